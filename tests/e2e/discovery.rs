//! Discovery: gRPC health and server reflection (v1 and v1alpha) are served,
//! so generic gRPC tools can find and call the API.

use jejak_testkit::{Server, ServerOptions};
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{health_check_response::ServingStatus, HealthCheckRequest};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_every_service_serving() -> anyhow::Result<()> {
    let server = Server::start(ServerOptions::default())?;
    let mut health = HealthClient::new(server.channel().await?);
    for service in ["jejak.v1.CaptureService", "jejak.v1.TraceService"] {
        let r = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await?
            .into_inner();
        assert_eq!(r.status, ServingStatus::Serving as i32, "{service}");
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "jejak.v1.Nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_v1_and_v1alpha_list_the_api_and_describe_it() -> anyhow::Result<()> {
    use tonic_reflection::pb::{v1, v1alpha};
    let server = Server::start(ServerOptions::default())?;

    let mut c = v1::server_reflection_client::ServerReflectionClient::new(server.channel().await?);
    let requests = vec![
        v1::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
                String::new(),
            )),
        },
        v1::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(v1::server_reflection_request::MessageRequest::FileContainingSymbol(
                "jejak.v1.CaptureService".into(),
            )),
        },
    ];
    let mut stream = c
        .server_reflection_info(tokio_stream::iter(requests))
        .await?
        .into_inner();
    let listed = stream.message().await?.expect("a reply to ListServices");
    let names: Vec<String> = match listed.message_response {
        Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(l)) => {
            l.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("unexpected reply {other:?}"),
    };
    for want in [
        "jejak.v1.CaptureService",
        "jejak.v1.TraceService",
        "grpc.health.v1.Health",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} missing from {names:?}");
    }
    let file = stream.message().await?.expect("a reply to FileContainingSymbol");
    match file.message_response {
        Some(v1::server_reflection_response::MessageResponse::FileDescriptorResponse(f)) => {
            // The file that defines the service, with its RPCs.
            use prost::Message;
            let files: Vec<prost_types::FileDescriptorProto> = f
                .file_descriptor_proto
                .iter()
                .map(|b| prost_types::FileDescriptorProto::decode(b.as_slice()).expect("a file descriptor"))
                .collect();
            let service = files
                .iter()
                .filter(|file| file.package() == "jejak.v1")
                .flat_map(|file| file.service.iter())
                .find(|s| s.name() == "CaptureService")
                .unwrap_or_else(|| {
                    panic!(
                        "no CaptureService in {:?}",
                        files.iter().map(|f| f.name()).collect::<Vec<_>>()
                    )
                });
            let methods: Vec<&str> = service.method.iter().map(|m| m.name()).collect();
            for rpc in ["ReceiveMaterial", "ProcessLots", "VoidEvent", "CaptureStream"] {
                assert!(methods.contains(&rpc), "{rpc} missing from {methods:?}");
            }
        }
        other => panic!("unexpected reply {other:?}"),
    }

    let mut c = v1alpha::server_reflection_client::ServerReflectionClient::new(server.channel().await?);
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1alpha::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut stream = c
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await?
        .into_inner();
    match stream.message().await?.and_then(|m| m.message_response) {
        Some(v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(l)) => {
            assert!(l.service.iter().any(|s| s.name == "jejak.v1.TraceService"));
        }
        other => panic!("unexpected reply {other:?}"),
    }
    Ok(())
}
