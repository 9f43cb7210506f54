/// Validated definitions, with precedence (environment < task < trigger) already resolved into
/// plain values: what the store saves and the daemon and executor read.
public struct Definitions: Hashable, Sendable, Codable {
    public var environments: [EnvironmentDefinition]
    /// Every queue and its concurrency limit.
    public var queues: [String: Int]
    /// Warnings and notes of the files, sorted by position: printed, never a reason to refuse them.
    public var notices: [Diagnostic] = []

    private enum CodingKeys: String, CodingKey { case environments, queues }

    public init(environments: [EnvironmentDefinition], queues: [String: Int], notices: [Diagnostic] = []) {
        (self.environments, self.queues, self.notices) = (environments, queues, notices.sorted())
    }

    /// Every task of every environment.
    public var tasks: [TaskDefinition] { environments.flatMap(\.tasks) }
}

public struct EnvironmentDefinition: Hashable, Sendable, Codable {
    public var name: String
    public var description: String?
    /// The environment's own queue, the default of its tasks.
    public var queue: String?
    /// The file it was read from.
    public var file: String
    /// A fingerprint of the file's bytes (and of the definition format): a redeploy of an
    /// unchanged file need not compare its definitions one by one.
    public var sourceHash: String
    public var tasks: [TaskDefinition]
}

public struct TaskDefinition: Hashable, Sendable, Codable {
    public var environment: String
    public var name: String
    /// `ENV.TASK`.
    public var fullName: String { "\(environment).\(name)" }
    public var description: String?
    public var command: Command
    /// Environment variables: the environment's, overlaid with the task's.
    public var env: [String: String]
    public var params: [Param]
    public var retries: RetryPolicy
    public var timeout: TimeoutPolicy
    public var killGraceMilliseconds: Int64
    public var queue: String
    public var overlap: OverlapPolicy
    public var circuitBreaker: CircuitBreakerPolicy?
    public var fallbacks: [Command]
    public var onFailure: Command?
    public var maxOutputBytes: Int64
    public var workingDirectory: String?
    public var user: String?
    public var triggers: [TriggerDefinition]
}

public struct TriggerDefinition: Hashable, Sendable, Codable {
    public var name: String
    public var schedule: TriggerSchedule
    public var description: String?
    public var autoActivate: Bool
    public var inputs: [String: InputValue]
    /// Environment variables: environment < task < trigger.
    public var env: [String: String]
    public var queue: String
    public var labels: [String: String]
    public var annotations: [String: String]
    public var catchUp: CatchUpPolicy
    public var startingDeadlineMilliseconds: Int64?
    public var overlap: OverlapPolicy
}
