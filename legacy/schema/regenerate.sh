#!/usr/bin/env bash
# Regenerates legacy/src/zero/flist_capnp.rs from legacy/schema/flist.capnp. Needs the capnp
# compiler (Debian: capnproto). The generated file is committed so that building flisthub
# never needs it; the `schema` test fails when the two drift apart.
set -euo pipefail
cd "$(dirname "$0")/../.."
LEGACY_REGENERATE_SCHEMA=1 cargo test -p legacy --test schema
