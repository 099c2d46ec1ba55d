//! Compiles the .proto files with protox (a protobuf compiler in Rust), so building needs no
//! system `protoc`; prost-build turns the descriptors into Rust.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["draft/v1/draft.proto", "grpc/health/v1/health.proto"];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(files, ["."])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
