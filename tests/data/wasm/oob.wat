;; Traps on an out-of-bounds load (linear memory is one 64 KiB page).
(module
  (memory (export "memory") 1)
  (func (export "_start") (drop (i32.load (i32.const 0x7ffffff0)))))
