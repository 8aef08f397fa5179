;; Imports a function no host provides: refused when linking, before the container starts.
(module
  (import "env" "missing" (func $missing))
  (func (export "_start") (call $missing)))
