;; Traps at once: `unreachable`.
(module (func (export "_start") unreachable))
