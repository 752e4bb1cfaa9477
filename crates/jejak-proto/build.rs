//! Compiles `proto/` with protox (no system protoc) and generates prost/tonic code.

use std::path::PathBuf;

use prost_build::ServiceGenerator;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files = [
        "jejak/v1/types.proto",
        "jejak/v1/events.proto",
        "jejak/v1/capture.proto",
        "jejak/v1/trace.proto",
        "jejak/v1/admin.proto",
    ];
    for f in &files {
        println!("cargo:rerun-if-changed={}", root.join(f).display());
    }
    let fds = protox::compile(files, [&root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("jejak_descriptor.bin"), prost::Message::encode_to_vec(&fds))?;
    // Clients keep tonic-prost's codec; servers answer a request that does
    // not decode with INVALID_ARGUMENT (see src/codec.rs).
    let clients = tonic_prost_build::configure()
        .build_client(true)
        .build_server(false)
        .service_generator();
    let servers = tonic_prost_build::configure()
        .build_client(false)
        .build_server(true)
        .codec_path("crate::codec::RequestCodec")
        .service_generator();
    let mut config = prost_build::Config::new();
    config.out_dir(&out);
    config.service_generator(Box::new(Both(clients, servers)));
    config.compile_fds(fds)?;
    Ok(())
}

/// Generates the client of each service with one generator and its server with the other.
struct Both(Box<dyn ServiceGenerator>, Box<dyn ServiceGenerator>);

impl ServiceGenerator for Both {
    fn generate(&mut self, service: prost_build::Service, buf: &mut String) {
        self.0.generate(service.clone(), buf);
        self.1.generate(service, buf);
    }

    fn finalize(&mut self, buf: &mut String) {
        self.0.finalize(buf);
        self.1.finalize(buf);
    }

    fn finalize_package(&mut self, package: &str, buf: &mut String) {
        self.0.finalize_package(package, buf);
        self.1.finalize_package(package, buf);
    }
}
