.PHONY: setup install hello test bench clean
# 1) install everything and run the embedded default bundle
setup: install hello
install:
	bash hack/setup.sh
hello:
	.venv/bin/ocirun run -b bundles/hello hello
# 2) run the tests (this is what .ci/run calls)
test:
	bash hack/test.sh $(TESTS)
bench:
	.venv/bin/python hack/bench.py $(BENCHFLAGS)
clean:
	rm -rf build .venv bundles/*/rootfs
