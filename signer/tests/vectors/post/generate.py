"""Writes botocore.json: presigned POST forms made by botocore's generate_presigned_post with fixed
credentials and a fixed clock. Run once (see README.md); the test suite only reads the JSON."""
import datetime
import json

import botocore
import botocore.auth
import botocore.config
import botocore.session
import botocore.signers

NOW = datetime.datetime(2026, 11, 30, 12, 34, 56)
botocore.auth.get_current_datetime = lambda: NOW
botocore.signers.get_current_datetime = lambda: NOW

CASES = [
    {
        "name": "key only",
        "bucket": "drafts",
        "key": "t1/0f3c/photo.jpg",
        "content_type": None,
        "length": None,
        "metadata": [],
        "token": None,
        "expires": 3600,
    },
    {
        "name": "type, size range and metadata",
        "bucket": "draftstore-drafts",
        "key": "tenant-a/01J9Z/report 2026 (final).pdf",
        "content_type": "application/pdf",
        "length": [1, 10485760],
        "metadata": [["owner", "alice"], ["source", "uppy"]],
        "token": None,
        "expires": 900,
    },
    {
        "name": "session token and non-ASCII key",
        "bucket": "drafts",
        "key": "t/\u00e9t\u00e9/\u65e5\u672c.txt",
        "content_type": "text/plain; charset=utf-8",
        "length": [0, 1024],
        "metadata": [["note", "caf\u00e9 \"quoted\" \\ back"]],
        "token": "FwoGZXIvYXdzEXAMPLETOKEN/+=",
        "expires": 604800,
    },
]

out = {"botocore": botocore.__version__, "now": NOW.strftime("%Y%m%dT%H%M%SZ"),
       "access_key": "AKIAIOSFODNN7EXAMPLE", "secret_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
       "region": "us-east-1", "cases": []}
for case in CASES:
    session = botocore.session.get_session()
    client = session.create_client(
        "s3", region_name=out["region"], endpoint_url="http://127.0.0.1:8333",
        aws_access_key_id=out["access_key"], aws_secret_access_key=out["secret_key"],
        aws_session_token=case["token"],
        config=botocore.config.Config(signature_version="s3v4"),
    )
    fields, conditions = {}, []
    if case["content_type"] is not None:
        fields["Content-Type"] = case["content_type"]
        conditions.append({"Content-Type": case["content_type"]})
    for name, value in case["metadata"]:
        fields["x-amz-meta-" + name] = value
        conditions.append({"x-amz-meta-" + name: value})
    if case["length"] is not None:
        conditions.append(["content-length-range", case["length"][0], case["length"][1]])
    form = client.generate_presigned_post(
        case["bucket"], case["key"], Fields=fields, Conditions=conditions,
        ExpiresIn=case["expires"],
    )
    out["cases"].append(dict(case, fields=list(form["fields"].items())))

with open("botocore.json", "w", encoding="utf-8") as f:
    json.dump(out, f, indent=2)
    f.write("\n")
