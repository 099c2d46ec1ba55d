//! # draftstore-proto
//!
//! The gRPC messages of DraftStore (`draft/v1/draft.proto`, package `draft.v1`), the
//! standard health check (`grpc.health.v1`) and server reflection (`grpc.reflection.v1`; its
//! `v1alpha` twin has the same messages and field numbers), as prost types, and
//! [`DESCRIPTORS`], the compiled descriptor set of all of them (what reflection answers from).
//! Messages only: the gateway routes gRPC itself over HTTP/2.
//!
//! **Why a build script:** protox compiles the .proto files in Rust at build time, so no
//! system `protoc` is needed and the generated code can never drift from the .proto files.
//!
//! ```
//! use draftstore_proto::draft::v1::GetUploadUrlRequest;
//! use prost::Message;
//! let req = GetUploadUrlRequest { object_name: "cat.jpg".into(), constraints: None };
//! assert_eq!(GetUploadUrlRequest::decode(&*req.encode_to_vec()).unwrap(), req);
//! ```
#![forbid(unsafe_code)]
#![allow(clippy::all, clippy::pedantic, missing_docs)]

pub use prost;

pub mod draft {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/draft.v1.rs"));

        /// gRPC method paths of `draft.v1.DraftService`.
        pub mod paths {
            pub const CREATE_DRAFT_BUCKET: &str = "/draft.v1.DraftService/CreateDraftBucket";
            pub const GET_UPLOAD_URL: &str = "/draft.v1.DraftService/GetUploadURL";
            pub const GET_DOWNLOAD_URL: &str = "/draft.v1.DraftService/GetDownloadURL";
            pub const CONFIRM_UPLOAD: &str = "/draft.v1.DraftService/ConfirmUpload";
            pub const CREATE_MULTIPART_UPLOAD: &str =
                "/draft.v1.DraftService/CreateMultipartUpload";
            pub const GET_PART_UPLOAD_URLS: &str = "/draft.v1.DraftService/GetPartUploadURLs";
            pub const LIST_PARTS: &str = "/draft.v1.DraftService/ListParts";
            pub const COMPLETE_MULTIPART_UPLOAD: &str =
                "/draft.v1.DraftService/CompleteMultipartUpload";
            pub const ABORT_MULTIPART_UPLOAD: &str = "/draft.v1.DraftService/AbortMultipartUpload";
            pub const LIST_MULTIPART_UPLOADS: &str = "/draft.v1.DraftService/ListMultipartUploads";
            pub const LIST_DRAFTS: &str = "/draft.v1.DraftService/ListDrafts";
            pub const GET_UPLOAD_FORM: &str = "/draft.v1.DraftService/GetUploadForm";
        }
    }
}

/// The encoded `google.protobuf.FileDescriptorSet` of every .proto file above and of the files
/// they import, as protox compiled them in the build script.
pub const DESCRIPTORS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptors.bin"));

pub mod grpc {
    pub mod reflection {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/grpc.reflection.v1.rs"));

            /// The service's one (bidi) method.
            pub const INFO_PATH: &str = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
            /// The same method of the older `v1alpha` service (same messages).
            pub const INFO_PATH_V1ALPHA: &str =
                "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";
        }
    }

    pub mod health {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/grpc.health.v1.rs"));

            pub const CHECK_PATH: &str = "/grpc.health.v1.Health/Check";
        }
    }
}
