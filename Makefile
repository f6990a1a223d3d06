# TrustID: the two commands are `make run` and `make test` (see README.md).
SHELL := /bin/bash
ENV := . deploy/env.sh &&
BIN := bin/trustid
LAB_BIN := bin/trustid-lab

.PHONY: run test fault fuzz setup build vet lint bench eval-attacks

## run: install what is missing (apt packages, Go modules, pinned models) and
## start the service on its embedded default (SQLite + in-process store).
run: setup build
	$(ENV) ./$(BIN) serve

## test: install what is missing, then vet, lint and run the whole test suite.
test: setup build vet lint
	$(ENV) TRUSTID_E2E_BIN=$(CURDIR)/$(BIN) go test -race -timeout 20m ./...

## fault: the fault suite alone (issue 16; `make test` runs it too): the real
## binary on a private PostgreSQL and redis-server of its own through a
## PostgreSQL restart, a 10 s PostgreSQL stop, a Redis stop, Redis refusing
## writes and kill -9, under load; prints one table per scenario (README.md,
## "Fault suite"). Lost, fail-open and credential errors must be 0.
fault: setup build
	$(ENV) TRUSTID_E2E_BIN=$(CURDIR)/$(BIN) go test -count=1 -timeout 10m -run '^TestFault$$' -v ./cmd/trustid

setup:
	@./deploy/setup.sh

## build: the service (bin/trustid) and the lab (bin/trustid-lab: evaluation,
## training, test clips, benchmark tokens).
build:
	$(ENV) go build -o $(BIN) ./cmd/trustid
	$(ENV) go build -o $(LAB_BIN) ./cmd/trustid-lab

## vet: go vet over every package.
vet:
	$(ENV) go vet ./...

## lint: staticcheck at the version pinned in go.mod (tool directive), with
## staticcheck.conf; `go mod tidy` must leave go.mod and go.sum unchanged.
lint:
	$(ENV) go tool staticcheck ./...
	$(ENV) go mod tidy -diff

bench:
	$(ENV) go test -run '^$$' -bench . -benchmem ./...

## eval-attacks: build the shared-data liveness attack set and its manifest
## in a temporary folder (trustid-lab make-attacks) and print the per-type
## APCER / BPCER JSON of the full liveness decision on it (trustid-lab
## eval-liveness -manifest; liveness/RESULTS.md, #17). OUT=file keeps the JSON;
## HELDOUT=- (or train-synthvoice corpus flags) adds the decisions with the
## synthetic-voice model retrained leaving each speaker and the dub's engine out.
eval-attacks: build
	$(ENV) ./lab/livenesseval/eval-attacks.sh $(LAB_BIN) "$(OUT)" "$(HELDOUT)"

## fuzz: every Go fuzz target (func FuzzX in *_test.go, found by
## bench/fuzz/run.sh) for FUZZTIME each, one after another; prints a
## markdown table (target, package, time, execs, new inputs, crashes).
## FUZZ=regexp picks targets, FUZZPARALLEL=n sets workers per target.
FUZZTIME ?= 60s
fuzz:
	$(ENV) FUZZTIME=$(FUZZTIME) ./bench/fuzz/run.sh
