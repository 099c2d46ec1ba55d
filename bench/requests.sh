# Sourced by bench/load.sh and bench/instructions.sh: the requests both send, so that their
# figures are of the same calls; bench/rss.sh and bench/ratelimit-load.sh take free_port.

# A free TCP port on 127.0.0.1.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The object name every upload-url request asks for.
KEY='uploads/2026/11/photo of cat.jpg'

# Writes into directory $1 the bodies of one upload-url call in each form: upload.json (REST),
# upload.grpc (a gRPC frame of GetUploadURLRequest), upload.grpc.bare (the message alone, as
# Connect's application/proto sends it) and upload.connect.json (Connect's JSON).
write_upload_url_requests() {
  printf '{"object_name": "%s"}' "$KEY" > "$1/upload.json"
  python3 - "$KEY" "$1/upload.grpc" <<'PY'
import struct, sys
key = sys.argv[1].encode()
message = b"\x0a" + bytes([len(key)]) + key   # GetUploadURLRequest { object_name = 1 }
open(sys.argv[2], "wb").write(b"\x00" + struct.pack(">I", len(message)) + message)
open(sys.argv[2] + ".bare", "wb").write(message)   # Connect's application/proto: no frame
PY
  printf '{"objectName": "%s"}' "$KEY" > "$1/upload.connect.json"
}

# The gateway's JSON answer to the REST upload-url call (on port $1, bodies in directory $2).
upload_url_reply() {
  curl -s -X POST -H 'content-type: application/json' --data-binary @"$2/upload.json" "http://127.0.0.1:$1/api/v1/upload-url"
}

# The length of the upload URL in such an answer ($1): the baselines answer with one as long.
url_bytes_of() {
  python3 -c 'import json,sys; print(len(json.loads(sys.argv[1])["upload_url"]))' "$1"
}
