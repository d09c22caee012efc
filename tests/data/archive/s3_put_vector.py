# The S3 sink's signing vector (tests/unit/events/archive/s3_sink_test.cpp), computed apart
# from the C++ signer with Python's standard library: python3 tests/data/archive/s3_put_vector.py
import hashlib, hmac, base64
ak, sk = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
region, service = "eu-west-1", "s3"
amzdate, date = "20261207T180102Z", "20261207"
host = "audit-bucket.s3.eu-west-1.amazonaws.com"
path = "/logs/2026/12/07/gw-1-20261207T180102Z-000000001.jsonl.gz"
payload = b"hello archive\n"
md5 = base64.b64encode(hashlib.md5(payload).digest()).decode()
sha = hashlib.sha256(payload).hexdigest()
headers = {"content-md5": md5, "content-type": "application/gzip", "host": host,
           "if-none-match": "*", "x-amz-content-sha256": sha, "x-amz-date": amzdate}
names = sorted(headers)
creq = "\n".join(["PUT", path, "", "".join(f"{n}:{headers[n]}\n" for n in names), ";".join(names), sha])
scope = f"{date}/{region}/{service}/aws4_request"
sts = "\n".join(["AWS4-HMAC-SHA256", amzdate, scope, hashlib.sha256(creq.encode()).hexdigest()])
k = hmac.new(("AWS4" + sk).encode(), date.encode(), hashlib.sha256).digest()
for part in (region, service, "aws4_request"):
    k = hmac.new(k, part.encode(), hashlib.sha256).digest()
print("md5", md5)
print("sha", sha)
print("sig", hmac.new(k, sts.encode(), hashlib.sha256).hexdigest())
print("signed", ";".join(names))
