//! AI providers: OpenAI, Anthropic, Hugging Face, Cohere, Mistral, Groq, Replicate,
//! Perplexity, xAI, DeepSeek, LangSmith, OpenRouter, Pinecone.

use super::assigned;
use crate::scan::detector::{Detector, Examples, Filter::*, Window};

pub(super) const DETECTORS: &[Detector] = &[
    Detector {
        id: "openai-api-key",
        description: "OpenAI API key (user, project, service account or admin)",
        keywords: &["T3BlbkFJ"],
        pattern: r"(?m)(?:^|[^A-Za-z0-9_-])(?P<v>sk-(?:(?:proj|svcacct|admin)-)?[A-Za-z0-9_-]{20,150}T3BlbkFJ[A-Za-z0-9_-]{20,150})(?:[^A-Za-z0-9_-]|$)",
        filters: &[NotPlaceholder, Entropy(4.0)],
        window: Window::Line,
        examples: Examples {
            positive: &[
                "OPENAI_API_KEY=sk-proj-{u:74}T3BlbkFJ{u:74}",
                "openai.api_key = \"sk-{a:20}T3BlbkFJ{a:20}\"",
            ],
            negative: &[
                "sk-{a:20}T3BlbkFJ{a:5}",
                "sk-xxxxxxxxxxxxxxxxxxxxT3BlbkFJxxxxxxxxxxxxxxxxxxxx",
            ],
        },
    },
    Detector {
        id: "anthropic-api-key",
        description: "Anthropic API key",
        keywords: &["sk-ant-api"],
        pattern: r"(?m)(?P<v>sk-ant-api03-[A-Za-z0-9_-]{93}AA)(?:[^A-Za-z0-9_-]|$)",
        filters: &[NotPlaceholder, Entropy(4.0)],
        window: Window::Line,
        examples: Examples {
            positive: &["ANTHROPIC_API_KEY=sk-ant-api03-{u:93}AA"],
            negative: &["sk-ant-api03-{u:20}AA"],
        },
    },
    Detector {
        id: "anthropic-admin-key",
        description: "Anthropic admin API key",
        keywords: &["sk-ant-admin"],
        pattern: r"(?m)(?P<v>sk-ant-admin01-[A-Za-z0-9_-]{93}AA)(?:[^A-Za-z0-9_-]|$)",
        filters: &[NotPlaceholder, Entropy(4.0)],
        window: Window::Line,
        examples: Examples {
            positive: &["key: sk-ant-admin01-{u:93}AA"],
            negative: &["sk-ant-admin01-{u:9}AA"],
        },
    },
    Detector {
        id: "huggingface-token",
        description: "Hugging Face access token",
        keywords: &["hf_"],
        pattern: r"(?m)(?:^|[^A-Za-z0-9_])(?P<v>hf_[A-Za-z]{34})(?:[^A-Za-z0-9_]|$)",
        filters: &[Classes(3), NotPlaceholder, Entropy(4.0)],
        window: Window::Line,
        examples: Examples {
            positive: &["HF_TOKEN=hf_{L:34}", "login(token=\"hf_{L:34}\")"],
            negative: &["hf_{l:34}", "hf_{L:20}"],
        },
    },
    Detector {
        id: "huggingface-org-token",
        description: "Hugging Face organization API token",
        keywords: &["api_org_"],
        pattern: r"(?m)(?:^|[^A-Za-z0-9_])(?P<v>api_org_[A-Za-z]{34})(?:[^A-Za-z0-9_]|$)",
        filters: &[Classes(3), NotPlaceholder, Entropy(4.0)],
        window: Window::Line,
        examples: Examples {
            positive: &["HF_ORG_TOKEN=api_org_{L:34}"],
            negative: &["api_org_{l:34}"],
        },
    },
    Detector {
        id: "cohere-api-key",
        description: "Cohere API key",
        keywords: &["cohere", "co_api_key"],
        pattern: assigned!(
            r"(?:cohere|co_)[\w.-]{0,20}(?:key|token)",
            r"[A-Za-z0-9]{40}"
        ),
        filters: &[Classes(3), NotPlaceholder, Entropy(4.0)],
        window: Window::Line,
        examples: Examples {
            positive: &["COHERE_API_KEY={a:40}", "co_api_key: \"{a:40}\""],
            negative: &["COHERE_API_KEY={l:40}"],
        },
    },
    Detector {
        id: "mistral-api-key",
        description: "Mistral AI API key",
        keywords: &["mistral"],
        pattern: assigned!(r"mistral[\w.-]{0,20}(?:key|token)", r"[A-Za-z0-9]{32}"),
        filters: &[Classes(3), NotPlaceholder, Entropy(3.8)],
        window: Window::Line,
        examples: Examples {
            positive: &["MISTRAL_API_KEY={a:32}", "const mistralApiKey = '{a:32}';"],
            negative: &["MISTRAL_API_KEY={a:16}"],
        },
    },
    Detector {
        id: "groq-api-key",
        description: "Groq API key",
        keywords: &["gsk_"],
        pattern: r"\b(?P<v>gsk_[A-Za-z0-9]{52})\b",
        filters: &[NotPlaceholder, Entropy(4.0)],
        window: Window::Line,
        examples: Examples {
            positive: &["GROQ_API_KEY=gsk_{a:52}"],
            negative: &["gsk_{a:20}"],
        },
    },
    Detector {
        id: "replicate-api-token",
        description: "Replicate API token",
        keywords: &["r8_"],
        pattern: r"(?m)(?:^|[^A-Za-z0-9_])(?P<v>r8_[A-Za-z0-9]{37})\b",
        filters: &[Classes(3), NotPlaceholder, Entropy(4.0)],
        window: Window::Line,
        examples: Examples {
            positive: &["REPLICATE_API_TOKEN=r8_{a:37}"],
            negative: &["r8_{a:10}"],
        },
    },
    Detector {
        id: "perplexity-api-key",
        description: "Perplexity API key",
        keywords: &["pplx-"],
        pattern: r"\b(?P<v>pplx-[A-Za-z0-9]{48})\b",
        filters: &[NotPlaceholder, Entropy(4.0)],
        window: Window::Line,
        examples: Examples {
            positive: &["PPLX_API_KEY=pplx-{a:48}"],
            negative: &["pplx-{a:12}"],
        },
    },
    Detector {
        id: "xai-api-key",
        description: "xAI (Grok) API key",
        keywords: &["xai-"],
        pattern: r"(?m)(?:^|[^A-Za-z0-9_-])(?P<v>xai-[A-Za-z0-9]{80})\b",
        filters: &[NotPlaceholder, Entropy(4.0)],
        window: Window::Line,
        examples: Examples {
            positive: &["XAI_API_KEY=xai-{a:80}"],
            negative: &["xai-{a:30}"],
        },
    },
    Detector {
        id: "deepseek-api-key",
        description: "DeepSeek API key",
        keywords: &["deepseek"],
        pattern: assigned!(r"deepseek[\w.-]{0,20}(?:key|token)", r"sk-[a-f0-9]{32}"),
        filters: &[NotPlaceholder, Entropy(3.2)],
        window: Window::Line,
        examples: Examples {
            positive: &["DEEPSEEK_API_KEY=sk-{h:32}"],
            negative: &["DEEPSEEK_API_KEY=sk-{h:12}"],
        },
    },
    Detector {
        id: "langsmith-api-key",
        description: "LangSmith API key",
        keywords: &["lsv2_"],
        pattern: r"\b(?P<v>lsv2_(?:pt|sk)_[a-f0-9]{32}_[a-f0-9]{10})\b",
        filters: &[NotPlaceholder, Entropy(3.2)],
        window: Window::Line,
        examples: Examples {
            positive: &["LANGSMITH_API_KEY=lsv2_pt_{h:32}_{h:10}"],
            negative: &["lsv2_pt_{h:12}_{h:10}"],
        },
    },
    Detector {
        id: "openrouter-api-key",
        description: "OpenRouter API key",
        keywords: &["sk-or-v1-"],
        pattern: r"\b(?P<v>sk-or-v1-[a-f0-9]{64})\b",
        filters: &[NotPlaceholder, Entropy(3.2)],
        window: Window::Line,
        examples: Examples {
            positive: &["OPENROUTER_API_KEY=sk-or-v1-{h:64}"],
            negative: &["sk-or-v1-{h:20}"],
        },
    },
    Detector {
        id: "pinecone-api-key",
        description: "Pinecone API key",
        keywords: &["pcsk_"],
        pattern: r"\b(?P<v>pcsk_[A-Za-z0-9]{5,6}_[A-Za-z0-9]{40,80})\b",
        filters: &[NotPlaceholder, Entropy(4.0)],
        window: Window::Line,
        examples: Examples {
            positive: &["PINECONE_API_KEY=pcsk_{a:6}_{a:63}"],
            negative: &["pcsk_{a:6}_{a:10}"],
        },
    },
];
