//! Credentials in URLs and connection strings: PostgreSQL, MySQL/MariaDB, MongoDB, Redis,
//! AMQP, JDBC, and any `scheme://user:password@host`.
//!
//! These detectors key on names, not on the value's shape, so they reject words, references
//! (`${DB_PASSWORD}`, `%s`) and placeholders, and want a value of 6+ bytes using 2+ classes.

use crate::scan::detector::{Detector, Examples, Filter::*, Window};

/// The filters shared by every URL detector.
const URL_FILTERS: &[crate::scan::detector::Filter] =
    &[MinLen(6), Classes(2), NotPlaceholder, NotWord, Entropy(2.5)];

pub(super) const DETECTORS: &[Detector] = &[
    Detector {
        id: "postgres-url-password",
        description: "PostgreSQL connection URL with a password",
        keywords: &["postgres://", "postgresql://", "postgres+", "postgresql+"],
        pattern: r#"(?i)\bpostgres(?:ql)?(?:\+[a-z0-9]+)?://[^\s:/@"'`<>]{0,64}:(?P<v>[^\s@/"'`<>]{1,128})@[A-Za-z0-9._\[\]-]+"#,
        filters: URL_FILTERS,
        window: Window::Line,
        examples: Examples {
            positive: &[
                "DATABASE_URL=postgres://app:{a:16}@db.internal:5432/app",
                "url = \"postgresql+psycopg://svc:{p:14}@10.0.0.5/prod\"",
            ],
            negative: &[
                "postgres://postgres:postgres@localhost/db",
                "postgres://user:password@localhost/db",
                "postgres://${DB_USER}:${DB_PASSWORD}@host/db",
                "postgresql://app:%s@%s/db",
            ],
        },
    },
    Detector {
        id: "mysql-url-password",
        description: "MySQL / MariaDB connection URL with a password",
        keywords: &["mysql://", "mariadb://", "mysql+"],
        pattern: r#"(?i)\b(?:mysql|mariadb)(?:\+[a-z0-9]+)?://[^\s:/@"'`<>]{0,64}:(?P<v>[^\s@/"'`<>]{1,128})@[A-Za-z0-9._\[\]-]+"#,
        filters: URL_FILTERS,
        window: Window::Line,
        examples: Examples {
            positive: &["SQLALCHEMY_DATABASE_URI = 'mysql+pymysql://web:{a:12}@mysql.prod/shop'"],
            negative: &[
                "mysql://root:root@127.0.0.1/test",
                "mysql://user:{password}@host/db",
            ],
        },
    },
    Detector {
        id: "mongodb-url-password",
        description: "MongoDB connection URL with a password",
        keywords: &["mongodb://", "mongodb+srv://"],
        pattern: r#"(?i)\bmongodb(?:\+srv)?://[^\s:/@"'`<>]{0,64}:(?P<v>[^\s@/"'`<>]{1,128})@[A-Za-z0-9._,:\[\]-]+"#,
        filters: URL_FILTERS,
        window: Window::Line,
        examples: Examples {
            positive: &["MONGO_URI=mongodb+srv://admin2:{a:20}@cluster0.ab12c.mongodb.net/app"],
            negative: &[
                "mongodb://user:pass@localhost:27017",
                "mongodb://<user>:<password>@host",
            ],
        },
    },
    Detector {
        id: "redis-url-password",
        description: "Redis connection URL with a password",
        keywords: &["redis://", "rediss://"],
        pattern: r#"(?i)\brediss?://[^\s:/@"'`<>]{0,64}:(?P<v>[^\s@/"'`<>]{1,128})@[A-Za-z0-9._\[\]-]+"#,
        filters: URL_FILTERS,
        window: Window::Line,
        examples: Examples {
            positive: &["REDIS_URL=redis://:{a:24}@cache.internal:6379/0"],
            negative: &[
                "redis://:password@localhost:6379",
                "redis://localhost:6379/0",
            ],
        },
    },
    Detector {
        id: "amqp-url-password",
        description: "AMQP (RabbitMQ) connection URL with a password",
        keywords: &["amqp://", "amqps://"],
        pattern: r#"(?i)\bamqps?://[^\s:/@"'`<>]{0,64}:(?P<v>[^\s@/"'`<>]{1,128})@[A-Za-z0-9._\[\]-]+"#,
        filters: URL_FILTERS,
        window: Window::Line,
        examples: Examples {
            positive: &["broker_url = 'amqp://worker:{a:18}@rabbit.prod:5672//'"],
            negative: &["amqp://guest:guest@localhost:5672//"],
        },
    },
    Detector {
        id: "jdbc-url-password",
        description: "JDBC connection string with a password",
        keywords: &["jdbc:"],
        pattern: r#"(?i)\bjdbc:[a-z0-9]+:[^\s"'`<>]{0,200}?[;?&:]password=(?P<v>[^\s;&"'`<>]{1,128})"#,
        filters: URL_FILTERS,
        window: Window::Line,
        examples: Examples {
            positive: &["url=jdbc:sqlserver://db:1433;databaseName=app;user=sa;password={a:16};"],
            negative: &["jdbc:sqlserver://db:1433;user=sa;password=${DB_PASSWORD};"],
        },
    },
    Detector {
        id: "url-credentials",
        description: "URL with an embedded user name and password",
        keywords: &[
            "https://",
            "http://",
            "ftp://",
            "ftps://",
            "sftp://",
            "smtp://",
            "smtps://",
            "ldap://",
            "ldaps://",
            "ssh://",
            "git://",
            "svn://",
            "mssql://",
            "sqlserver://",
            "oracle://",
            "clickhouse://",
            "nats://",
            "kafka://",
            "couchdb://",
            "neo4j://",
            "bolt://",
            "cockroachdb://",
            "elasticsearch://",
            "imap://",
            "imaps://",
            "pop3://",
        ],
        pattern: r#"(?i)\b[a-z][a-z0-9+.-]{1,20}://[^\s:/@"'`<>]{1,64}:(?P<v>[^\s@/"'`<>]{1,128})@[A-Za-z0-9._\[\]-]+"#,
        filters: URL_FILTERS,
        window: Window::Line,
        examples: Examples {
            positive: &[
                "git remote add origin https://deploy:{a:20}@git.acme.io/team/app.git",
                "SMTP_URL=smtps://mailer:{p:16}@smtp.acme.io:465",
            ],
            negative: &[
                "https://user:pass@example.com/",
                "http://localhost:8080/path",
                "https://${USER}:${TOKEN}@host/x",
                "http://foo:bar@host",
            ],
        },
    },
];
