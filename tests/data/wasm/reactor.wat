;; A WASI reactor (exports _initialize, no _start): cannot run as a container process.
(module (memory (export "memory") 1) (func (export "_initialize")))
