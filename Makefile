# The two quick-start commands (see README.md) and a few conveniences.
.PHONY: run test bench build dev clean

run:      ## install, build and start the gateway with the demo configuration
	scripts/run-demo.sh

test:     ## install, build and run every test
	scripts/test.sh

bench:    ## benchmark against direct and nginx (see bench/README.md)
	bench/run.sh

build:
	cmake --preset release && cmake --build --preset release

dev:
	cmake --preset dev && cmake --build --preset dev

clean:
	rm -rf build
