# kafka-msk-migrator. `make demo` and `make test` are what a fresh machine needs;
# see README.md. build-<LogicalId> targets are called by `sam build`
# (Metadata: BuildMethod: makefile) and write $(ARTIFACTS_DIR)/bootstrap.

GO        ?= go
GOFLAGS_LAMBDA = CGO_ENABLED=0 GOOS=linux GOARCH=arm64
LDFLAGS   = -s -w
ARTIFACTS_DIR ?= $(CURDIR)/.aws-sam/manual
FUZZTIME  ?= 300000x

.PHONY: demo test unit test-arm64 fuzz bench bench-scale bench-real rehearse-real lint validate deploy clean tools

define lambda_build
	$(GOFLAGS_LAMBDA) $(GO) build -tags lambda.norpc -trimpath -ldflags='$(LDFLAGS)' -o $(ARTIFACTS_DIR)/bootstrap ./functions/$(1)
endef

build-ReplicatorFunction:
	$(call lambda_build,replicator)

build-CutoverFunction:
	$(call lambda_build,cutover)

build-ProvisionerFunction:
	$(call lambda_build,provisioner)

## demo: a full local migration rehearsal on embedded Kafka (no AWS, no Docker)
demo: statemachine/local/node_modules
	$(GO) run ./local/cmd/kmig-demo

# The local ASL interpreter (aws-local-stepfunctions), asl-validator and Node 22.
statemachine/local/node_modules: statemachine/local/package-lock.json
	npm ci --prefix statemachine/local --no-audit --no-fund
	@touch $@

## test: everything CI checks. Installs what the tests need first (npm packages,
## the pinned pip tools, the Kafka jars), runs unit, test-arm64 and fuzz, and
## stops the real Kafka brokers it started (KMIG_KEEP_BROKERS=1 keeps them);
## see scripts/test.sh
test:
	scripts/test.sh

unit:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 30m ./...

## test-arm64: the base64 and event decoders' tests built for arm64 (Lambda's
## architecture, where base64 runs NEON code) and run under qemu-user
test-arm64:
	@if command -v qemu-aarch64-static >/dev/null 2>&1; then \
	  echo "GOARCH=arm64 go test -exec qemu-aarch64-static ./shared/b64 ./shared/kafkaevent"; \
	  GOARCH=arm64 $(GO) test -count=1 -exec qemu-aarch64-static ./shared/b64 ./shared/kafkaevent; \
	elif [ -n "$$KMIG_REQUIRE_TOOLS" ]; then \
	  echo "test-arm64: qemu-aarch64-static not found (Debian package qemu-user-static)" >&2; exit 1; \
	else \
	  echo "SKIP the arm64 decoder tests: qemu-aarch64-static not found; as root: apt-get install qemu-user-static (or scripts/install-debian-packages.sh)"; \
	fi

## fuzz: each decoder (and the event base64 encoder, the record-batch header parser and the topic selection's patterns) fuzz target for a fixed number of inputs (FUZZTIME, go test -fuzztime syntax)
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./shared/kafkaevent
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeInPlace$$' -fuzztime $(FUZZTIME) ./shared/b64
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./shared/provenance
	$(GO) test -run '^$$' -fuzz '^FuzzAppendEncode$$' -fuzztime $(FUZZTIME) ./shared/b64
	$(GO) test -run '^$$' -fuzz '^FuzzHeaders$$' -fuzztime $(FUZZTIME) ./shared/txnstate
	$(GO) test -run '^$$' -fuzz '^FuzzSelection$$' -fuzztime $(FUZZTIME) ./shared/selection

## bench: side-by-side ratios, measured in one run, on embedded Kafka
bench:
	$(GO) run ./local/cmd/kmig-bench

## bench-scale: the reconciler (500 topics) and the cutover at many topics, on embedded Kafka
bench-scale:
	$(GO) run ./local/cmd/kmig-bench-scale

## bench-real: raw franz-go pipe vs replicator (ESM) vs MirrorMaker 2 on real
## Kafka brokers from Maven Central (docs/BENCHMARKS.md); needs Java 17 + Maven
bench-real:
	realkafka/brokers.sh start >/dev/null
	eval "$$(realkafka/brokers.sh env)" && $(GO) run ./realkafka/cmd/kmig-realbench $(BENCH_REAL_FLAGS)

## rehearse-real: `make demo`'s rehearsal on real Kafka brokers, once per source
## profile (deny-by-default, open, no-authorizer), one RESULT line each; needs
## Java 17 + Maven. Stops the brokers at the end only if it started them.
## REHEARSE_REAL_FLAGS, e.g. -profiles open -v (see go run ./realkafka/cmd/kmig-rehearse -h)
rehearse-real: statemachine/local/node_modules
	@s=$$(realkafka/brokers.sh start) || exit 1; \
	trap '[ "$$s" != started ] || realkafka/brokers.sh stop' EXIT; trap 'exit 130' INT TERM; \
	eval "$$(realkafka/brokers.sh env)" && $(GO) run ./realkafka/cmd/kmig-rehearse $(REHEARSE_REAL_FLAGS)

## lint: go vet and gofmt (CI runs it)
lint:
	$(GO) vet ./...
	gofmt -l $$(git ls-files '*.go') | (! grep .)

## tools: cfn-lint and aws-sam-cli (pip, pinned) plus the npm state machine tools
TOOLS_BIN = $${KMIG_TOOLS_DIR:-$$HOME/.cache/kmig-tools}/venv/bin
tools: statemachine/local/node_modules
	scripts/install-template-tools.sh

## validate: the template and state machine checks CI runs
validate: tools
	PATH="$(TOOLS_BIN):$$PATH" cfn-lint template.yaml
	PATH="$(TOOLS_BIN):$$PATH" SAM_CLI_TELEMETRY=0 sam validate --lint
	npm --prefix statemachine/local run validate

## deploy: build and deploy with SAM (first time: sam deploy --guided)
deploy:
	SAM_CLI_TELEMETRY=0 sam build
	SAM_CLI_TELEMETRY=0 sam deploy

clean:
	rm -rf .aws-sam
