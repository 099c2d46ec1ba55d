//! Compiles the .proto files with protox (a protobuf compiler in Rust), so building needs no
//! system `protoc`; prost-build turns the descriptors into Rust, and the descriptor set itself
//! (every file and its imports) is written to `OUT_DIR/descriptors.bin` for server reflection.
//! pbjson-build then writes proto3's JSON mapping of `draft.v1` and `grpc.health.v1` (serde
//! impls of the prost types, `<package>.serde.rs`) from the same descriptors, for Connect's
//! JSON codec.

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "draft/v1/draft.proto",
        "grpc/health/v1/health.proto",
        "grpc/reflection/v1/reflection.proto",
        "grpc/reflection/v1alpha/reflection.proto",
        "google/rpc/status.proto",
        "google/rpc/error_details.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(files, ["."])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let encoded = descriptors.encode_to_vec();
    std::fs::write(out.join("descriptors.bin"), &encoded)?;
    // The error details are packed in `google.protobuf.Any` as every gRPC library expects:
    // `type.googleapis.com/google.rpc.ErrorInfo`.
    prost_build::Config::new()
        .enable_type_names()
        .type_name_domain([".google.rpc"], "type.googleapis.com")
        .compile_fds(descriptors)?;
    // Unknown fields are skipped, as connect-go's JSON codec does (protojson `DiscardUnknown`)
    // and as protobuf decoding does: a client built from a newer draft.proto keeps working.
    // Unknown enum names stay an error (a value this server cannot act on).
    pbjson_build::Builder::new()
        .register_descriptors(&encoded)?
        .ignore_unknown_fields()
        .build(&[".draft.v1", ".grpc.health.v1"])?;
    Ok(())
}
