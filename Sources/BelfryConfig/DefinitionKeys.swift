/// Every key a definition file accepts, by the mapping it belongs to. The readers check each
/// mapping against these lists (an unknown key is an error), and the test suite checks that the
/// manual documents each of them: one list, so neither can drift.
public enum DefinitionKeys {
    public static let file = ["environment", "tasks", "queues"]
    public static let environment = ["name", "description", "env", "queue", "working_directory", "user"]
    public static let queue = ["concurrency"]
    public static let task = [
        "name", "description", "command", "env", "params", "retries", "timeout", "kill_grace", "queue", "overlap",
        "circuit_breaker", "fallbacks", "on_failure", "max_output_bytes", "triggers",
    ]
    public static let shellCommand = ["shell"]
    public static let param = ["required", "default", "description"]
    public static let retries = ["count", "backoff", "no_retry_exit_codes"]
    public static let backoff = ["initial", "multiplier", "max", "jitter"]
    public static let timeout = ["max_runtime", "max_queued_time"]
    public static let circuitBreaker = ["failure_threshold", "cooldown"]
    public static let trigger = [
        "name", "cron", "timezone", "every", "interval_minutes", "start_time", "predefined", "trigger_time_input_key",
        "description", "auto_activate", "inputs", "env", "queue", "labels", "annotations", "catch_up",
        "starting_deadline", "overlap", "dst",
    ]
    public static let dst = ["skipped", "repeated"]
    public static let catchUp = ["policy", "limit"]

    /// Keys that users of other schedulers write, and the key that says the same here: the hint
    /// for an unknown key when spelling alone does not find it ("rate" is not near "every").
    public static let synonyms: [String: String] = [
        "rate": "every", "fixed_rate": "every", "interval": "every", "period": "every", "repeat_interval": "every",
        "schedule": "cron", "crontab": "cron", "cron_expression": "cron", "expression": "cron",
        "tz": "timezone", "time_zone": "timezone", "zone": "timezone",
        "cmd": "command", "run": "command", "exec": "command", "script": "command", "args": "command",
        "environment": "env", "env_vars": "env", "variables": "env",
        "retry": "retries", "max_retries": "retries", "attempts": "retries",
        "concurrency_policy": "overlap", "concurrency": "queue",
        "enabled": "auto_activate", "active": "auto_activate",
        "timezone_dst": "dst", "misfire": "catch_up", "misfire_policy": "catch_up",
    ]

    /// Each mapping (named as the manual's headings name it) with its keys.
    public static let all: [(mapping: String, keys: [String])] = [
        ("file", file), ("environment", environment), ("queues", queue), ("task", task), ("command", shellCommand),
        ("params", param), ("retries", retries), ("backoff", backoff), ("timeout", timeout),
        ("circuit_breaker", circuitBreaker), ("trigger", trigger), ("dst", dst), ("catch_up", catchUp),
    ]
}
