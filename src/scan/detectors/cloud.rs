//! Cloud providers: AWS, Azure, Google Cloud, Alibaba, DigitalOcean, Heroku, Cloudflare, Fly.io,
//! Databricks.

use super::assigned;
use crate::scan::detector::{Detector, Examples, Filter::*, Window};

/// An AWS access key id (the public half of a key pair).
const AWS_KEY_ID: &str = r"(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}";

pub(super) const DETECTORS: &[Detector] = &[
    Detector {
        id: "aws-secret-access-key",
        description: "AWS secret access key next to its access key id",
        keywords: &["AKIA", "ASIA", "ABIA", "ACCA"],
        pattern: r"(?m)(?:^|[^A-Za-z0-9/+])(?P<v>[A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)",
        filters: &[
            Classes(3),
            NotPlaceholder,
            Entropy(4.2),
            Near {
                pattern: AWS_KEY_ID,
                lines: 5,
            },
        ],
        window: Window::Lines(5),
        examples: Examples {
            positive: &[
                "const AWS_KEY_ID = \"AKIA{3:16}\";\nconst AWS_SECRET = \"{b:40}\";",
                "#define ACCESS_KEY \"AKIA{3:16}\"\n#define SECRET_KEY \"{b:40}\"\n",
                "{\n  \"id\": \"ASIA{3:16}\",\n  \"key\": \"{b:40}\"\n}",
                "aws:\n  key_id: AKIA{3:16}\n  secret: {b:40}\n",
                "S={b:40}\nK=AKIA{3:16}\n",
                "new BasicAWSCredentials(\"AKIA{3:16}\", \"{b:40}\")",
            ],
            negative: &[
                "const AWS_SECRET = \"{b:40}\";",
                "id = AKIA{3:16}\nsha = \"{h:40}\"",
                "AKIA{3:16}\n\n\n\n\n\n\n\nkey = \"{b:40}\"",
                "key = AKIAIOSFODNN7EXAMPLE\nsecret = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            ],
        },
    },
    Detector {
        id: "aws-secret-access-key-assignment",
        description: "AWS secret access key assigned to an AWS-named variable",
        keywords: &[
            "secret_access_key",
            "secretaccesskey",
            "secret-access-key",
            "aws_secret",
            "awssecret",
            "aws-secret",
        ],
        pattern: assigned!(
            r"secret[_-]?access[_-]?key|aws[_-]?secret",
            r"[A-Za-z0-9/+]{40}"
        ),
        filters: &[Classes(3), NotPlaceholder, Entropy(4.0)],
        window: Window::Line,
        examples: Examples {
            positive: &[
                "aws_secret_access_key = {b:40}",
                "AWS_SECRET_ACCESS_KEY: \"{b:40}\"",
                "\"SecretAccessKey\": \"{b:40}\",",
            ],
            negative: &[
                "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "aws_secret_access_key = ${AWS_SECRET_ACCESS_KEY}",
            ],
        },
    },
    Detector {
        id: "aws-access-key-id",
        description: "AWS access key id",
        keywords: &["AKIA", "ASIA", "ABIA", "ACCA"],
        pattern: r"\b(?P<v>(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16})\b",
        filters: &[NotPlaceholder, Entropy(3.0)],
        window: Window::Line,
        examples: Examples {
            positive: &[
                "aws_access_key_id = AKIA{3:16}",
                "\"AccessKeyId\": \"ASIA{3:16}\"",
            ],
            negative: &["AKIAIOSFODNN7EXAMPLE", "AKIA{3:10}", "AKIAAAAAAAAAAAAAAAAA"],
        },
    },
    Detector {
        id: "aws-session-token",
        description: "AWS temporary session token",
        keywords: &["FwoGZXIvYXdz", "IQoJb3JpZ2lu"],
        pattern: r"(?P<v>(?:FwoGZXIvYXdz|IQoJb3JpZ2lu)[A-Za-z0-9/+=]{100,})",
        filters: &[NotPlaceholder, Entropy(4.5)],
        window: Window::Line,
        examples: Examples {
            positive: &["aws_session_token = IQoJb3JpZ2lu{b:300}", "FwoGZXIvYXdz{b:200}"],
            negative: &["IQoJb3JpZ2lu{b:20}"],
        },
    },
    Detector {
        id: "aws-mws-key",
        description: "Amazon Marketplace Web Service key",
        keywords: &["amzn.mws."],
        pattern: r"(?P<v>amzn\.mws\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})",
        filters: &[NotPlaceholder],
        window: Window::Line,
        examples: Examples {
            positive: &["mws = \"amzn.mws.{h:8}-{h:4}-{h:4}-{h:4}-{h:12}\""],
            negative: &["amzn.mws.00000000-0000-0000-0000-000000000000"],
        },
    },
    Detector {
        id: "azure-storage-connection-string",
        description: "Azure Storage connection string with an account key",
        keywords: &["defaultendpointsprotocol"],
        pattern: r#"(?i)DefaultEndpointsProtocol=https?;[^"'\s]{0,200}?AccountKey=(?P<v>[A-Za-z0-9+/]{86}==)"#,
        filters: &[NotPlaceholder, Entropy(4.5)],
        window: Window::Line,
        examples: Examples {
            positive: &["\"DefaultEndpointsProtocol=https;AccountName=acct1;AccountKey={b:86}==;EndpointSuffix=core.windows.net\""],
            negative: &[
                "DefaultEndpointsProtocol=https;AccountName=x;AccountKey=<your-key>;",
                "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;",
            ],
        },
    },
    Detector {
        id: "azure-storage-account-key",
        description: "Azure Storage account key",
        keywords: &["accountkey", "account_key", "account-key", "storagekey", "storage_key", "storage-key"],
        pattern: assigned!(
            r"(?:account|storage)[_-]?(?:access[_-]?)?key",
            r"[A-Za-z0-9+/]{86}=="
        ),
        filters: &[NotPlaceholder, Entropy(4.5)],
        window: Window::Line,
        examples: Examples {
            positive: &["AZURE_STORAGE_KEY={b:86}==", "\"accountKey\": \"{b:86}==\""],
            negative: &["AZURE_STORAGE_KEY={b:40}=="],
        },
    },
    Detector {
        id: "azure-sas-token",
        description: "Azure shared access signature (SAS) token",
        keywords: &["sig="],
        pattern: r"(?i)[?&;]sig=(?P<v>[A-Za-z0-9%+/]{40,120}(?:%3D|=){0,2})",
        filters: &[
            NotPlaceholder,
            Entropy(4.0),
            Near {
                pattern: r"(?i)\bsv=\d{4}-\d{2}-\d{2}",
                lines: 0,
            },
        ],
        window: Window::Line,
        examples: Examples {
            positive: &["url = \"https://acct.blob.core.windows.net/c/f?sv=2022-11-02&ss=b&srt=o&sp=r&se=2026-01-01T00:00:00Z&sig={b:43}%3D\""],
            negative: &["?sv=2022-11-02&sig=<signature>", "?sig={b:43}%3D"],
        },
    },
    Detector {
        id: "azure-entra-client-secret",
        description: "Microsoft Entra ID (Azure AD) application client secret",
        keywords: &["q~"],
        pattern: r"(?m)(?:^|[^A-Za-z0-9_~.-])(?P<v>[A-Za-z0-9_~.-]{3}[0-9]Q~[A-Za-z0-9_~.-]{31,34})(?:[^A-Za-z0-9_~.-]|$)",
        filters: &[Classes(3), NotPlaceholder, Entropy(3.8)],
        window: Window::Line,
        examples: Examples {
            positive: &["AZURE_CLIENT_SECRET={a:3}8Q~{u:34}", "\"clientSecret\": \"{a:3}7Q~{a:31}\""],
            negative: &["client_secret = \"abc8Q~short\"", "xyz8Q~xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"],
        },
    },
    Detector {
        id: "azure-devops-pat",
        description: "Azure DevOps personal access token",
        keywords: &["JQQJ9"],
        pattern: r"\b(?P<v>[A-Za-z0-9]{52}JQQJ9[A-Za-z0-9]{19}AZDO[A-Za-z0-9]{4})\b",
        filters: &[Entropy(4.0)],
        window: Window::Line,
        examples: Examples {
            positive: &["ADO_PAT={a:52}JQQJ99{a:18}AZDO{a:4}"],
            negative: &["{a:52}JQQJ99{a:18}XXXX{a:4}"],
        },
    },
    Detector {
        id: "azure-devops-pat-legacy",
        description: "Azure DevOps personal access token (52-character format)",
        keywords: &[
            "azure_devops", "azuredevops", "azure-devops", "ado_pat", "azdo", "devops_pat",
            "dev.azure.com", "visualstudio.com", "system_accesstoken",
        ],
        pattern: r"(?m)(?:^|[^a-z2-7])(?P<v>[a-z2-7]{52})(?:[^a-z2-7]|$)",
        filters: &[Classes(2), NotPlaceholder, Entropy(4.2)],
        window: Window::Lines(2),
        examples: Examples {
            positive: &[
                "AZURE_DEVOPS_PAT={z:52}",
                "git clone https://user:{z:52}@dev.azure.com/org/p/_git/r",
            ],
            negative: &["azure_devops_pat = {l:52}", "AZURE_DEVOPS_PAT={z:40}"],
        },
    },
    Detector {
        id: "azure-service-bus-key",
        description: "Azure Service Bus / Event Hubs shared access key",
        keywords: &["sharedaccesskey="],
        pattern: r"(?i)SharedAccessKey=(?P<v>[A-Za-z0-9+/]{43}=)",
        filters: &[NotPlaceholder, Entropy(4.3)],
        window: Window::Line,
        examples: Examples {
            positive: &["Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey={b:43}="],
            negative: &["SharedAccessKey=<key>"],
        },
    },
    Detector {
        id: "azure-app-configuration",
        description: "Azure App Configuration connection string",
        keywords: &["azconfig.io"],
        pattern: r"(?i)Endpoint=https://[\w.-]+\.azconfig\.io;Id=[^;]{1,64};Secret=(?P<v>[A-Za-z0-9+/]{40,88}={0,2})",
        filters: &[NotPlaceholder, Entropy(4.3)],
        window: Window::Line,
        examples: Examples {
            positive: &["Endpoint=https://cfg.azconfig.io;Id=a1b2-l0-s0:{a:20};Secret={b:43}="],
            negative: &["Endpoint=https://cfg.azconfig.io;Id=x;Secret=${SECRET}"],
        },
    },
    Detector {
        id: "gcp-service-account",
        description: "Google Cloud service account key (JSON) with its private key",
        keywords: &["service_account"],
        pattern: r#""private_key"\s*:\s*"(?P<v>-----BEGIN (?:RSA )?PRIVATE KEY-----[A-Za-z0-9+/=\\\s]{100,}-----END (?:RSA )?PRIVATE KEY-----(?:\\n)?)""#,
        filters: &[Entropy(4.5)],
        window: Window::Lines(12),
        examples: Examples {
            positive: &[r#"{
  "type": "service_account",
  "project_id": "demo-1",
  "private_key_id": "{h:40}",
  "private_key": "-----BEGIN PRIV{-}ATE KEY-----\nMIIE{b:60}\n{b:64}\n{b:64}\n{b:30}==\n-----END PRIV{-}ATE KEY-----\n",
  "client_email": "bot@demo-1.iam.gserviceaccount.com"
}"#],
            negative: &[r#"{
  "type": "service_account",
  "private_key": "<private key>"
}"#],
        },
    },
    Detector {
        id: "gcp-api-key",
        description: "Google Cloud / Firebase / Gemini API key",
        keywords: &["AIza"],
        pattern: r"(?m)\b(?P<v>AIza[0-9A-Za-z_-]{35})(?:[^0-9A-Za-z_-]|$)",
        filters: &[NotPlaceholder, Entropy(3.5)],
        window: Window::Line,
        examples: Examples {
            positive: &["GOOGLE_API_KEY=AIza{u:35}", "apiKey: \"AIza{a:35}\","],
            negative: &["AIzaSyXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", "AIza{a:20}"],
        },
    },
    Detector {
        id: "gcp-oauth-client-secret",
        description: "Google OAuth client secret",
        keywords: &["GOCSPX-"],
        pattern: r"(?m)(?P<v>GOCSPX-[A-Za-z0-9_-]{28})(?:[^A-Za-z0-9_-]|$)",
        filters: &[NotPlaceholder, Entropy(3.5)],
        window: Window::Line,
        examples: Examples {
            positive: &["\"client_secret\": \"GOCSPX-{u:28}\""],
            negative: &["GOCSPX-xxxxxxxxxxxxxxxxxxxxxxxxxxxx"],
        },
    },
    Detector {
        id: "alibaba-access-key-id",
        description: "Alibaba Cloud access key id",
        keywords: &["LTAI"],
        pattern: r"\b(?P<v>LTAI[A-Za-z0-9]{20})\b",
        filters: &[Classes(3), NotPlaceholder, Entropy(3.5)],
        window: Window::Line,
        examples: Examples {
            positive: &["ALIBABA_CLOUD_ACCESS_KEY_ID=LTAI{a:20}"],
            negative: &["LTAI{l:20}"],
        },
    },
    Detector {
        id: "digitalocean-token",
        description: "DigitalOcean personal access, OAuth or refresh token",
        keywords: &["dop_v1_", "doo_v1_", "dor_v1_"],
        pattern: r"\b(?P<v>do[opr]_v1_[a-f0-9]{64})\b",
        filters: &[NotPlaceholder, Entropy(3.5)],
        window: Window::Line,
        examples: Examples {
            positive: &["DIGITALOCEAN_TOKEN=dop_v1_{h:64}"],
            negative: &["dop_v1_{h:20}"],
        },
    },
    Detector {
        id: "heroku-api-key",
        description: "Heroku API key",
        keywords: &["HRKU-"],
        pattern: r"(?m)(?P<v>HRKU-[A-Za-z0-9_-]{58,64})(?:[^A-Za-z0-9_-]|$)",
        filters: &[NotPlaceholder, Entropy(3.8)],
        window: Window::Line,
        examples: Examples {
            positive: &["HEROKU_API_KEY=HRKU-AA{u:58}"],
            negative: &["HRKU-{u:20}"],
        },
    },
    Detector {
        id: "heroku-api-key-legacy",
        description: "Heroku API key (UUID format) assigned to a Heroku-named variable",
        keywords: &["heroku"],
        pattern: assigned!(
            r"heroku",
            r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
        ),
        filters: &[NotPlaceholder],
        window: Window::Line,
        examples: Examples {
            positive: &["HEROKU_API_KEY={h:8}-{h:4}-{h:4}-{h:4}-{h:12}"],
            negative: &["HEROKU_API_KEY=00000000-0000-0000-0000-000000000000"],
        },
    },
    Detector {
        id: "cloudflare-api-token",
        description: "Cloudflare API token or global API key",
        keywords: &["cloudflare", "cf_api"],
        pattern: assigned!(
            r"(?:cloudflare|cf)[\w.-]{0,30}(?:token|key)",
            r"[A-Za-z0-9_-]{40}|[a-f0-9]{37}"
        ),
        filters: &[Classes(2), NotPlaceholder, Entropy(3.5)],
        window: Window::Line,
        examples: Examples {
            positive: &["CLOUDFLARE_API_TOKEN={a:40}", "CF_API_KEY=\"{h:37}\""],
            negative: &["CLOUDFLARE_API_TOKEN=${CF_TOKEN}"],
        },
    },
    Detector {
        id: "cloudflare-origin-ca-key",
        description: "Cloudflare Origin CA key",
        keywords: &["v1.0-"],
        pattern: r"\b(?P<v>v1\.0-[a-f0-9]{24}-[a-f0-9]{146})\b",
        filters: &[Entropy(3.5)],
        window: Window::Line,
        examples: Examples {
            positive: &["origin_ca_key = \"v1.0-{h:24}-{h:146}\""],
            negative: &["v1.0-{h:24}-{h:20}"],
        },
    },
    Detector {
        id: "flyio-token",
        description: "Fly.io access token",
        keywords: &["fo1_", "fm2_"],
        pattern: r"(?m)(?P<v>fo1_[A-Za-z0-9_-]{43}|fm2_[A-Za-z0-9+/=_-]{100,})(?:[^A-Za-z0-9_-]|$)",
        filters: &[NotPlaceholder, Entropy(4.0)],
        window: Window::Line,
        examples: Examples {
            positive: &["FLY_API_TOKEN=fo1_{u:43}"],
            negative: &["fo1_{u:10}"],
        },
    },
    Detector {
        id: "databricks-token",
        description: "Databricks personal access token",
        keywords: &["dapi"],
        pattern: r"\b(?P<v>dapi[a-f0-9]{32}(?:-\d)?)\b",
        filters: &[NotPlaceholder, Entropy(3.2)],
        window: Window::Line,
        examples: Examples {
            positive: &["DATABRICKS_TOKEN=dapi{h:32}"],
            negative: &["dapi{h:16}"],
        },
    },
];
