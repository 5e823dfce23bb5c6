#!/usr/bin/env python3
"""Helper of benches/scan_bench.sh: builds the corpus, plants fake secrets, scores reports.

  scan_bench.py corpus DIR [MIB]   copy ~MIB MiB (default 200) of real source code (text files
                                   only) from this machine into DIR/corpus, add 50 files with
                                   one planted secret each; writes DIR/manifest.json. Findings
                                   outside the planted files are false positives on clean code.
  scan_bench.py score TOOL REPORT MANIFEST ROOT
                                   prints "recall FOUND/50 kinds-missed=... fp_lines=N"

Every planted secret is FAKE (random, never issued by any provider) but pattern-valid: GitHub
and npm tokens carry a correct CRC32 checksum, keys are freshly generated, JWTs are signed.
Nothing here is committed: the secrets exist only in the generated corpus.
"""

import base64
import glob
import hashlib
import hmac
import json
import os
import random
import shutil
import string
import subprocess
import sys
import tempfile
import zlib

ALNUM = string.ascii_letters + string.digits
B62 = string.digits + string.ascii_uppercase + string.ascii_lowercase


def sources():
    """Source trees already on the machine, in a fixed order."""
    roots = sorted(glob.glob("/usr/lib/python3.*")) + ["/usr/share/perl", "/usr/share/perl5"]
    roots += sorted(glob.glob(os.path.expanduser("~/.cargo/registry/src/*/*")))
    return [r for r in roots if os.path.isdir(r)]


def is_text(path):
    try:
        with open(path, "rb") as f:
            return b"\0" not in f.read(8192)
    except OSError:
        return False


def copy_corpus(dest, limit):
    total = 0
    for root in sources():
        label = root.strip("/").replace("/", "_")
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d not in (".git", "__pycache__", "target"))
            for name in sorted(filenames):
                src = os.path.join(dirpath, name)
                if os.path.islink(src) or not os.path.isfile(src):
                    continue
                size = os.path.getsize(src)
                if size == 0 or size > (4 << 20) or not is_text(src):
                    continue
                rel = os.path.join(label, os.path.relpath(src, root))
                dst = os.path.join(dest, rel)
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                shutil.copyfile(src, dst)
                total += size
                if total >= limit:
                    return total
    return total


class Fake:
    """Random, pattern-valid, never-issued secrets."""

    def __init__(self, seed):
        self.r = random.Random(seed)

    def s(self, n, chars=ALNUM):
        return "".join(self.r.choice(chars) for _ in range(n))

    def hex(self, n):
        return self.s(n, "0123456789abcdef")

    def b64(self, n):
        return self.s(n, ALNUM + "+/")

    def crc_token(self, prefix):
        body = self.s(30)
        n = zlib.crc32(body.encode())
        digits = ""
        for _ in range(6):
            digits = B62[n % 62] + digits
            n //= 62
        return prefix + body + digits

    def aws_id(self):
        return "AKIA" + self.s(16, string.ascii_uppercase + "234567")

    def aws_secret(self):
        return self.b64(40)

    def password(self):
        # What people type: a word-ish stem, digits and a symbol, 12-16 characters.
        stem = self.r.choice(["Tr0ub4dor", "Blu3Heron", "Qx7mLp", "Vk9Wn2", "Zephyr7", "M4rlin"])
        return stem + self.r.choice("!#%*@^") + self.s(self.r.randint(4, 6))

    def pem(self, kind):
        d = tempfile.mkdtemp()
        try:
            if kind == "openssh":
                key = os.path.join(d, "k")
                subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
                return open(key).read()
            return subprocess.run(
                ["openssl", "genrsa", "-traditional", "2048"],
                check=True, capture_output=True, text=True,
            ).stdout
        finally:
            shutil.rmtree(d)

    def jwt(self):
        enc = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
        head = enc(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        body = enc(json.dumps({"sub": self.s(8), "iat": 1716239022}).encode())
        sig = enc(hmac.new(self.s(32).encode(), f"{head}.{body}".encode(), hashlib.sha256).digest())
        return f"{head}.{body}.{sig}"


def plants(f):
    """(kind, file name, text, secret lines (1-based, inclusive)) for 50 secrets."""
    p = []

    def add(kind, name, text):
        lines = text.split("\n")
        marked = [i + 1 for i, l in enumerate(lines) if "\x00" in l]
        text = text.replace("\x00", "")
        p.append((kind, name, text, (min(marked), max(marked))))

    m = "\x00"  # marks the lines that hold the secret
    add("aws-pair-env", ".env", f"APP_ENV=production\nAWS_ACCESS_KEY_ID={f.aws_id()}{m}\nAWS_SECRET_ACCESS_KEY={f.aws_secret()}{m}\n")
    add("aws-pair-const", "s3client.js", f"import {{ S3 }} from 'aws-sdk';\nconst accessKeyId = \"{f.aws_id()}\";{m}\nconst secretAccessKey = \"{f.aws_secret()}\";{m}\nexport const s3 = new S3({{ accessKeyId, secretAccessKey }});\n")
    add("aws-pair-define", "uploader.h", f"#ifndef UPLOADER_H\n#define UPLOADER_H\n#define S3_KEY \"{f.aws_id()}\"{m}\n#define S3_SECRET \"{f.aws_secret()}\"{m}\n#endif\n")
    add("aws-pair-json", "deploy.json", f"{{\n  \"region\": \"eu-west-1\",\n  \"keyId\": \"{f.aws_id()}\",{m}\n  \"key\": \"{f.aws_secret()}\"{m}\n}}\n")
    add("aws-session-token", "creds.yaml", f"aws:\n  session_token: IQoJb3JpZ2luX2VjE{f.b64(300)}{m}\n")
    add("azure-storage-conn", "appsettings.json", f"{{\n  \"Storage\": \"DefaultEndpointsProtocol=https;AccountName=acme{f.s(4).lower()};AccountKey={f.b64(86)}==;EndpointSuffix=core.windows.net\"{m}\n}}\n")
    add("azure-sas", "fetch.py", f"URL = 'https://acme.blob.core.windows.net/data/x.csv?sv=2022-11-02&ss=b&srt=o&sp=r&se=2026-01-01T00:00:00Z&st=2025-01-01T00:00:00Z&spr=https&sig={f.b64(43)}%3D'{m}\n")
    add("entra-client-secret", "azure.env", f"AZURE_TENANT_ID={f.hex(8)}-{f.hex(4)}-{f.hex(4)}-{f.hex(4)}-{f.hex(12)}\nAZURE_CLIENT_SECRET={f.s(3)}8Q~{f.s(34, ALNUM + '_-')}{m}\n")
    key = f.pem("rsa").replace("\n", "\\n").replace("BEGIN RSA PRIVATE KEY", "BEGIN PRIVATE KEY").replace("END RSA PRIVATE KEY", "END PRIVATE KEY")
    add("gcp-service-account", "sa.json", f"{{\n  \"type\": \"service_account\",\n  \"project_id\": \"acme-prod\",\n  \"private_key_id\": \"{f.hex(40)}\",\n  \"private_key\": \"{key}\",{m}\n  \"client_email\": \"bot@acme-prod.iam.gserviceaccount.com\"\n}}\n")
    add("gcp-api-key", "maps.js", f"const MAPS_KEY = \"AIza{f.s(35, ALNUM + '_-')}\";{m}\n")
    add("github-pat", "ci.sh", f"#!/bin/sh\nexport GITHUB_TOKEN={f.crc_token('ghp_')}{m}\ngh release list\n")
    add("github-fine-grained", "release.py", f"TOKEN = \"github_pat_{f.s(22)}_{f.s(59)}\"{m}\n")
    add("github-oauth", "oauth.json", f"{{\"access_token\": \"{f.crc_token('gho_')}\"}}{m}\n")
    add("github-app", "app.rb", f"client = Octokit::Client.new(access_token: '{f.crc_token('ghs_')}'){m}\n")
    add("gitlab-pat", ".gitlab-token", f"GITLAB_TOKEN=glpat-{f.s(20, ALNUM + '_-')}{m}\n")
    add("bitbucket", "bb.env", f"BITBUCKET_APP_PASSWORD=ATBB{f.s(32)}{m}\n")
    add("azure-devops-pat", "pipeline.ps1", f"$env:AZURE_DEVOPS_EXT_PAT = '{f.s(52, string.ascii_lowercase + '234567')}'{m}\naz devops login --organization https://dev.azure.com/acme\n")
    add("openai", "llm.py", f"client = OpenAI(api_key=\"sk-proj-{f.s(74, ALNUM + '_-')}T3BlbkFJ{f.s(74, ALNUM + '_-')}\"){m}\n")
    add("anthropic", "agent.ts", f"const anthropic = new Anthropic({{ apiKey: 'sk-ant-api03-{f.s(93, ALNUM + '_-')}AA' }});{m}\n")
    add("huggingface", "hf.py", f"login(token=\"hf_{f.s(34, string.ascii_letters)}\"){m}\n")
    add("cohere", "cohere.env", f"COHERE_API_KEY={f.s(40)}{m}\n")
    add("mistral", "mistral.py", f"MISTRAL_API_KEY = \"{f.s(32)}\"{m}\n")
    add("groq", "groq.js", f"const groq = new Groq({{ apiKey: \"gsk_{f.s(52)}\" }});{m}\n")
    add("replicate", "replicate.env", f"REPLICATE_API_TOKEN=r8_{f.s(37)}{m}\n")
    add("slack-bot", "slack.yaml", f"slack:\n  bot_token: xoxb-{f.s(12, string.digits)}-{f.s(13, string.digits)}-{f.s(24)}{m}\n")
    add("slack-webhook", "notify.sh", f"curl -X POST https://hooks.slack.com/services/T{f.s(10, string.ascii_uppercase + string.digits)}/B{f.s(10, string.ascii_uppercase + string.digits)}/{f.s(24)} -d @msg.json{m}\n")
    add("discord-bot", "bot.py", f"# discord bot\nclient.run('M{f.s(25)}.{f.s(6)}.{f.s(38, ALNUM + '_-')}'){m}\n")
    add("telegram-bot", "tg.env", f"TELEGRAM_BOT_TOKEN={f.s(10, string.digits)}:AA{f.s(33, ALNUM + '_-')}{m}\n")
    add("stripe-live", "billing.rb", f"Stripe.api_key = 'sk_live_{f.s(99)}'{m}\n")
    add("stripe-short", "pay.php", f"<?php\n\\Stripe\\Stripe::setApiKey('sk_live_{f.s(24)}');{m}\n")
    add("square", "square.env", f"SQUARE_ACCESS_TOKEN=EAAA{f.s(60, ALNUM + '_-')}{m}\n")
    add("braintree", "bt.env", f"BRAINTREE_TOKEN=access_token$production${f.s(16, string.ascii_lowercase + string.digits)}${f.hex(32)}{m}\n")
    add("npm", ".npmrc", f"registry=https://registry.npmjs.org/\n//registry.npmjs.org/:_authToken={f.crc_token('npm_')}{m}\n")
    add("pypi", ".pypirc", f"[pypi]\nusername = __token__\npassword = pypi-AgEIcHlwaS5vcmc{f.s(150, ALNUM + '_-')}{m}\n")
    add("dockerhub", "push.sh", f"echo dckr_pat_{f.s(27, ALNUM + '_-')} | docker login -u acme --password-stdin{m}\n")
    add("vault", "vault.env", f"VAULT_TOKEN=hvs.CAESI{f.s(91, ALNUM + '_-')}{m}\n")
    add("terraform-cloud", "credentials.tfrc.json", f"{{\"credentials\": {{\"app.terraform.io\": {{\"token\": \"{f.s(14)}.atlasv1.{f.s(67, ALNUM + '_-')}\"}}}}}}{m}\n")
    add("datadog", "datadog.yaml", f"api_key: {f.hex(32)}\ndd_api_key: {f.hex(32)}{m}\n")
    add("sentry", "sentryclirc", f"[auth]\ntoken=sntryu_{f.hex(64)}{m}\n")
    add("twilio", "twilio.py", f"TWILIO_ACCOUNT_SID = 'AC{f.hex(32)}'\nTWILIO_AUTH_TOKEN = '{f.hex(32)}'{m}\n")
    add("sendgrid", "mail.js", f"sgMail.setApiKey('SG.{f.s(22, ALNUM + '_-')}.{f.s(43, ALNUM + '_-')}');{m}\n")
    add("shopify", "shop.env", f"SHOPIFY_ACCESS_TOKEN=shpat_{f.hex(32)}{m}\n")
    rsa = f.pem("rsa").rstrip("\n").split("\n")
    add("rsa-private-key", "id_rsa", "\n".join(l + m for l in rsa) + "\n")
    ssh = f.pem("openssh").rstrip("\n").split("\n")
    add("openssh-private-key", "deploy_key", "\n".join(l + m for l in ssh) + "\n")
    add("postgres-url", "database.yml", f"production:\n  url: postgres://app:{f.s(18)}@db.acme.internal:5432/app{m}\n")
    add("mongodb-url", "mongo.js", f"mongoose.connect('mongodb+srv://svc:{f.s(16)}@cluster0.ab12c.mongodb.net/prod');{m}\n")
    add("password-env", "db.env", f"DB_HOST=db.internal\nDB_USER=app\nDB_PASSWORD={f.password()}{m}\n")
    add("password-json", "config.json", f"{{\n  \"db\": {{\n    \"user\": \"app\",\n    \"password\": \"{f.password()}\"{m}\n  }}\n}}\n")
    add("password-const", "Db.java", f"class Db {{\n    private static final String DB_PASSWORD = \"{f.password()}\";{m}\n}}\n")
    add("jwt-secret-yaml", "auth.yaml", f"auth:\n  jwt_secret: {f.s(40)}{m}\n  token: {f.jwt()}\n")
    assert len(p) == 50, len(p)
    return p


def build(dest, mib):
    if os.path.exists(dest):
        shutil.rmtree(dest)
    planted = os.path.join(dest, "corpus")
    total = copy_corpus(planted, mib << 20)
    f = Fake(20261127)
    dirs = sorted({os.path.dirname(os.path.relpath(os.path.join(dp, fn), planted))
                   for dp, _, fns in os.walk(planted) for fn in fns})
    rng = random.Random(7)
    manifest = []
    for i, (kind, name, text, lines) in enumerate(plants(f)):
        rel = os.path.join(rng.choice(dirs), f"planted{i:02d}", name)
        path = os.path.join(planted, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as out:
            out.write(text)
        manifest.append({"kind": kind, "file": rel, "lines": list(lines)})
    with open(os.path.join(dest, "manifest.json"), "w") as out:
        json.dump(manifest, out, indent=1)
    print(f"corpus: {total / 1e6:.1f} MB of source and 50 planted secrets in {planted}")


def findings(tool, report, root):
    """(relative file, line, value identity or None) of every finding in a tool's report."""
    out = []
    text = open(report, errors="replace").read()
    if tool in ("gitleaks", "betterleaks"):
        try:
            data = json.loads(text)
        except ValueError:
            data = [json.loads(l) for l in text.splitlines() if l.strip()]
        if isinstance(data, dict):
            data = data.get("findings", [])
        for d in data:
            loc = d.get("location") or {}
            file = d.get("File") or loc.get("path") or d.get("path") or ""
            line = d.get("StartLine") or loc.get("start_line") or d.get("line") or 0
            ident = (d.get("match") or {}).get("fingerprint")
            if ident is None and d.get("Secret"):
                ident = hashlib.sha256(d["Secret"].encode()).hexdigest()
            out.append((file, int(line), ident))
    elif tool == "kingfisher":
        for l in text.splitlines():
            if not l.strip():
                continue
            d = json.loads(l)
            fin = d.get("finding") or {}
            out.append((fin.get("path") or "", int(fin.get("line") or 0), fin.get("fingerprint")))
    else:  # gitgate JSON Lines
        for l in text.splitlines():
            if l.strip():
                d = json.loads(l)
                out.append((d["path"], int(d["line"]), d.get("fingerprint")))
    rel = []
    for file, line, ident in out:
        if not file:
            continue
        file = os.path.relpath(os.path.realpath(file), os.path.realpath(root))
        if file.startswith("corpus/"):
            file = file.split("/", 1)[1]
        rel.append((file, line, ident))
    return rel


def score(tool, report, manifest_path, root):
    manifest = json.load(open(manifest_path))
    found = findings(tool, report, root)
    planted_files = {m["file"] for m in manifest}
    hit, missed = 0, []
    for m in manifest:
        a, b = m["lines"]
        if any(f == m["file"] and a - 1 <= l <= b + 1 for f, l, _ in found):
            hit += 1
        else:
            missed.append(m["kind"])
    clean = [(f, l, i) for f, l, i in found if f not in planted_files]
    fp = len({(f, l) for f, l, _ in clean})
    idents = {i for _, _, i in clean}
    distinct = len(idents) if None not in idents else "?"
    print(f"recall {hit}/{len(manifest)} fp_lines={fp} fp_distinct={distinct} missed={','.join(missed) or '-'}")


if __name__ == "__main__":
    if sys.argv[1] == "corpus":
        build(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 200)
    elif sys.argv[1] == "score":
        score(*sys.argv[2:6])
    else:
        sys.exit(__doc__)
