;; An (empty) WebAssembly component: refused, only core command modules run.
(component)
