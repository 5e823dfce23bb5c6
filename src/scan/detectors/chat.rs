//! Chat: Slack, Discord, Telegram, Microsoft Teams.

use crate::scan::detector::{Detector, Examples, Filter::*, Window};

pub(super) const DETECTORS: &[Detector] = &[
    Detector {
        id: "slack-bot-token",
        description: "Slack bot token",
        keywords: &["xoxb-"],
        pattern: r"\b(?P<v>xoxb-[0-9]{10,13}-[0-9]{10,13}-[A-Za-z0-9]{24,34})\b",
        filters: &[NotPlaceholder, Entropy(3.5)],
        window: Window::Line,
        examples: Examples {
            positive: &["SLACK_BOT_TOKEN=xoxb-{d:12}-{d:13}-{a:24}"],
            negative: &["xoxb-{d:12}-{d:13}-xxxxxxxxxxxxxxxxxxxxxxxx", "xoxb-{a:10}"],
        },
    },
    Detector {
        id: "slack-user-token",
        description: "Slack user token",
        keywords: &["xoxp-", "xoxe-"],
        pattern: r"\b(?P<v>xox[pe](?:-[0-9]{10,13}){3}-[a-zA-Z0-9]{28,34})\b",
        filters: &[NotPlaceholder, Entropy(3.5)],
        window: Window::Line,
        examples: Examples {
            positive: &["token = \"xoxp-{d:12}-{d:12}-{d:13}-{h:32}\""],
            negative: &["xoxp-{d:12}-{h:32}"],
        },
    },
    Detector {
        id: "slack-legacy-token",
        description: "Slack legacy workspace, refresh or session token",
        keywords: &["xoxa-", "xoxr-", "xoxs-", "xoxo-"],
        pattern: r"\b(?P<v>xox[aors]-(?:[0-9]{10,13}-){1,3}[a-zA-Z0-9]{24,64})\b",
        filters: &[NotPlaceholder, Entropy(3.5)],
        window: Window::Line,
        examples: Examples {
            positive: &["xoxs-{d:12}-{d:12}-{d:12}-{h:64}"],
            negative: &["xoxs-{d:12}-abc"],
        },
    },
    Detector {
        id: "slack-app-token",
        description: "Slack app-level token",
        keywords: &["xapp-"],
        pattern: r"\b(?P<v>xapp-[0-9]-[A-Z0-9]{9,12}-[0-9]{10,13}-[a-f0-9]{64})\b",
        filters: &[NotPlaceholder, Entropy(3.5)],
        window: Window::Line,
        examples: Examples {
            positive: &["SLACK_APP_TOKEN=xapp-1-A{U:10}-{d:13}-{h:64}"],
            negative: &["xapp-1-A{U:10}-{d:13}-{h:10}"],
        },
    },
    Detector {
        id: "slack-config-token",
        description: "Slack app configuration token",
        keywords: &["xoxe.xox"],
        pattern: r"\b(?P<v>xoxe\.xox[bp]-[0-9]-[A-Z0-9]{163,166})\b",
        filters: &[NotPlaceholder, Entropy(3.5)],
        window: Window::Line,
        examples: Examples {
            positive: &["config_token: xoxe.xoxp-1-{U:164}"],
            negative: &["xoxe.xoxp-1-{U:20}"],
        },
    },
    Detector {
        id: "slack-webhook-url",
        description: "Slack incoming webhook URL",
        keywords: &["hooks.slack.com"],
        pattern: r"(?P<v>https?://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9+/_-]{40,120})",
        filters: &[NotPlaceholder, Entropy(4.0)],
        window: Window::Line,
        examples: Examples {
            positive: &["SLACK_WEBHOOK=https://hooks.slack.com/services/T{U:10}/B{U:10}/{a:24}"],
            negative: &["https://hooks.slack.com/services/TXXXXXXXX/BXXXXXXXX/XXXXXXXXXXXXXXXXXXXXXXXX"],
        },
    },
    Detector {
        id: "discord-bot-token",
        description: "Discord bot token",
        keywords: &["discord"],
        pattern: r"(?m)(?:^|[^A-Za-z0-9_-])(?P<v>[MNO][A-Za-z0-9_-]{23,27}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,38})(?:[^A-Za-z0-9_-]|$)",
        filters: &[Classes(3), NotPlaceholder, Entropy(4.0)],
        window: Window::Lines(2),
        examples: Examples {
            positive: &["DISCORD_BOT_TOKEN=M{a:25}.{a:6}.{u:38}", "# discord\nclient.run('N{a:23}.{a:6}.{a:27}')"],
            negative: &["DISCORD_BOT_TOKEN=M{a:25}.{a:6}"],
        },
    },
    Detector {
        id: "discord-webhook-url",
        description: "Discord webhook URL",
        keywords: &["/api/webhooks/"],
        pattern: r"(?P<v>https://(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/[0-9]{17,20}/[A-Za-z0-9_-]{60,68})",
        filters: &[NotPlaceholder, Entropy(4.0)],
        window: Window::Line,
        examples: Examples {
            positive: &["url: https://discord.com/api/webhooks/{d:18}/{u:68}"],
            negative: &["https://discord.com/api/webhooks/{d:18}/{u:10}"],
        },
    },
    Detector {
        id: "telegram-bot-token",
        description: "Telegram bot token",
        keywords: &[":AA"],
        pattern: r"(?m)(?:^|[^0-9])(?P<v>[0-9]{8,10}:AA[A-Za-z0-9_-]{33})(?:[^A-Za-z0-9_-]|$)",
        filters: &[NotPlaceholder, Entropy(3.8)],
        window: Window::Line,
        examples: Examples {
            positive: &["TELEGRAM_BOT_TOKEN={d:10}:AA{u:33}"],
            negative: &["{d:10}:AA{u:10}"],
        },
    },
    Detector {
        id: "teams-webhook-url",
        description: "Microsoft Teams incoming webhook URL",
        keywords: &["webhook.office.com"],
        pattern: r"(?P<v>https://[\w.-]+\.webhook\.office\.com/webhookb2/[A-Za-z0-9@-]{40,100}/IncomingWebhook/[a-f0-9]{32}/[A-Za-z0-9-]{36}(?:/[A-Za-z0-9_-]+)?)",
        filters: &[NotPlaceholder, Entropy(3.5)],
        window: Window::Line,
        examples: Examples {
            positive: &["TEAMS_WEBHOOK=https://acme.webhook.office.com/webhookb2/{h:8}-{h:4}-{h:4}-{h:4}-{h:12}@{h:8}-{h:4}-{h:4}-{h:4}-{h:12}/IncomingWebhook/{h:32}/{h:8}-{h:4}-{h:4}-{h:4}-{h:12}"],
            negative: &["https://acme.webhook.office.com/webhookb2/<id>/IncomingWebhook/<id>/<id>"],
        },
    },
];
