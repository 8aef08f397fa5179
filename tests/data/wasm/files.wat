;; Creates ./out.txt through the cwd preopen (fd 4, ".") and writes "written by wasm\n";
;; then copies /data/in.txt, opened through the root preopen (fd 3, "/"), to stdout.
;; Exit 10/11/12 when path_open(out)/path_open(in)/fd_read fails.
(module
  (import "wasi_snapshot_preview1" "path_open" (func $path_open
    (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "out.txt")
  (data (i32.const 120) "data/in.txt")
  (data (i32.const 140) "written by wasm\n")
  (func (export "_start")
    ;; oflags CREAT|TRUNC = 9
    (if (call $path_open (i32.const 4) (i32.const 0) (i32.const 100) (i32.const 7) (i32.const 9)
                         (i64.const 0x1fffffff) (i64.const 0x1fffffff) (i32.const 0) (i32.const 200))
      (then (call $proc_exit (i32.const 10))))
    (i32.store (i32.const 0) (i32.const 140))
    (i32.store (i32.const 4) (i32.const 16))
    (drop (call $fd_write (i32.load (i32.const 200)) (i32.const 0) (i32.const 1) (i32.const 8)))
    (drop (call $fd_close (i32.load (i32.const 200))))
    ;; lookupflags SYMLINK_FOLLOW = 1
    (if (call $path_open (i32.const 3) (i32.const 1) (i32.const 120) (i32.const 11) (i32.const 0)
                         (i64.const 0x1fffffff) (i64.const 0x1fffffff) (i32.const 0) (i32.const 204))
      (then (call $proc_exit (i32.const 11))))
    (i32.store (i32.const 0) (i32.const 1024))
    (i32.store (i32.const 4) (i32.const 4096))
    (if (call $fd_read (i32.load (i32.const 204)) (i32.const 0) (i32.const 1) (i32.const 8))
      (then (call $proc_exit (i32.const 12))))
    (i32.store (i32.const 4) (i32.load (i32.const 8)))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
