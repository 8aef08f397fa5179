;; memory.grow by 256 pages (16 MiB): prints "grow ok" and exits 0, or prints
;; "grow refused" and exits 7 when the store's memory limit forbids it.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "grow ok\n")
  (data (i32.const 32) "grow refused\n")
  (func $say (param $p i32) (param $n i32)
    (i32.store (i32.const 0) (local.get $p))
    (i32.store (i32.const 4) (local.get $n))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func (export "_start")
    (if (i32.eq (memory.grow (i32.const 256)) (i32.const -1))
      (then (call $say (i32.const 32) (i32.const 13)) (call $proc_exit (i32.const 7))))
    (call $say (i32.const 16) (i32.const 8))))
