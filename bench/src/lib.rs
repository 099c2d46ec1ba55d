//! Benchmarks live in `benches/` (criterion), the baseline servers (`hello`, `tonic_echo`) and the S3 load generator in `src/bin/`, profiling
//! loops in `examples/`, and the load scripts beside them (`bench/load.sh`, `bench/s3-load.sh`).
//! This library is empty.
