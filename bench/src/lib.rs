//! Benchmarks live in `benches/`; load scripts in `scripts/`. This library is empty.
