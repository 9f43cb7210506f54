import BelfrySchedule
import Yams

extension EnvironmentReader {
    mutating func readTask(_ node: Node, defaults: Defaults) -> TaskDefinition? {
        guard let task = file.mapping(node, "task", allowed: DefinitionKeys.task) else { return nil }
        guard let nameNode = task["name"] else {
            file.error(node, "task has no name", hint: "add name: in snake_case or kebab-case")
            return nil
        }
        guard let name = file.name(nameNode, "task name") else { return nil }
        guard let commandNode = task["command"] else {
            file.error(nameNode, "task \"\(name)\" has no command", hint: "add command: [\"/path/to/program\", \"arg\"] or command: { shell: \"...\" }")
            return nil
        }
        let command = readCommand(commandNode, "command")
        var env = defaults.env
        if let node = task["env"] { env.merge(file.stringMap(node, "task env")) { $1 } }
        var queue = defaults.queue ?? "default"
        if let node = task["queue"], let name = file.name(node, "queue") {
            queue = name
            queueReferences.append((name, node))
        }
        let params = task["params"].map { readParams($0) } ?? []
        var result = TaskDefinition(
            environment: defaults.environment, name: name,
            description: file.string(task["description"], "task description", maxLength: 255),
            command: command ?? .arguments([]), env: env, params: params,
            retries: task["retries"].map { readRetries($0) } ?? RetryPolicy(),
            timeout: task["timeout"].map { readTimeout($0) } ?? TimeoutPolicy(),
            killGraceMilliseconds: task["kill_grace"].flatMap { file.duration($0, "kill_grace") } ?? 10_000,
            queue: queue, overlap: task["overlap"].flatMap { readOverlap($0) } ?? .allow,
            circuitBreaker: task["circuit_breaker"].flatMap { readCircuitBreaker($0) },
            fallbacks: task["fallbacks"].map { (file.sequence($0, "fallbacks") ?? []).compactMap { readCommand($0, "fallback") } } ?? [],
            onFailure: task["on_failure"].flatMap { readCommand($0, "on_failure") },
            maxOutputBytes: task["max_output_bytes"].flatMap { file.int($0, "max_output_bytes", in: 1024...(1 << 40)) }.map(Int64.init) ?? 10 << 20,
            workingDirectory: defaults.workingDirectory, user: defaults.user, triggers: [])
        var triggerNames = Set<String>()
        for triggerNode in task["triggers"].flatMap({ file.sequence($0, "triggers") }) ?? [] {
            let trigger = readTrigger(triggerNode, task: result)
            if let name = trigger?.name ?? YAMLFile.givenName(triggerNode), !triggerNames.insert(name).inserted {
                file.error(triggerNode, "trigger \"\(name)\" is defined twice in task \"\(result.fullName)\"",
                           hint: "give one of them another name:")
                continue
            }
            if let trigger { result.triggers.append(trigger) }
        }
        return command == nil ? nil : result
    }

    private mutating func readCommand(_ node: Node, _ what: String) -> Command? {
        switch node {
        case .sequence(let items):
            let arguments = items.compactMap { file.string($0, "\(what) argument") }
            guard arguments.count == items.count else { return nil }
            guard let program = arguments.first, !program.isEmpty else {
                file.error(node, "\(what) is empty", hint: "the first item is the program to run")
                return nil
            }
            return .arguments(arguments)
        case .mapping:
            guard let mapping = file.mapping(node, what, allowed: DefinitionKeys.shellCommand), let shellNode = mapping["shell"],
                let script = file.string(shellNode, "\(what) shell")
            else {
                if case .mapping(let m) = node, m.isEmpty { file.error(node, "\(what) is empty", hint: "write { shell: \"...\" }") }
                return nil
            }
            return .shell(script)
        default:
            file.error(node, "\(what) must be a list of arguments or { shell: \"...\" }",
                       hint: "write [\"/usr/bin/program\", \"--flag\"], or { shell: \"...\" } for a shell command line")
            return nil
        }
    }

    private mutating func readParams(_ node: Node) -> [Param] {
        var params: [Param] = []
        for (name, keyNode, value) in file.entries(node, "params") ?? [] {
            guard YAMLFile.isName(name) else {
                file.error(keyNode, "param name \"\(name)\" is not a valid name", hint: "use snake_case")
                continue
            }
            var param = Param(name: name, required: false, defaultValue: nil)
            if value.null == nil, let settings = file.mapping(value, "param \(name)", allowed: DefinitionKeys.param) {
                param.required = settings["required"].flatMap { file.bool($0, "required") } ?? false
                param.defaultValue = settings["default"].flatMap { file.string($0, "default") }
                if param.required, param.defaultValue != nil {
                    file.error(keyNode, "param \"\(name)\" is required and has a default", hint: "a default makes it optional: keep one of the two")
                }
            }
            params.append(param)
        }
        return params
    }

    private mutating func readRetries(_ node: Node) -> RetryPolicy {
        var policy = RetryPolicy()
        if case .scalar = node {
            policy.count = file.int(node, "retries", in: 0...100) ?? 0
            return policy
        }
        guard let retries = file.mapping(node, "retries", allowed: DefinitionKeys.retries) else { return policy }
        policy.count = retries["count"].flatMap { file.int($0, "retries count", in: 0...100) } ?? 0
        if let backoffNode = retries["backoff"],
            let backoff = file.mapping(backoffNode, "backoff", allowed: DefinitionKeys.backoff)
        {
            if let n = backoff["initial"], let v = file.duration(n, "backoff initial", allowZero: true) { policy.backoff.initialMilliseconds = v }
            if let n = backoff["multiplier"], let v = file.number(n, "backoff multiplier", in: 1...100) { policy.backoff.multiplier = v }
            if let n = backoff["max"], let v = file.duration(n, "backoff max", allowZero: true) { policy.backoff.maxMilliseconds = v }
            if let n = backoff["jitter"], let v = file.number(n, "backoff jitter", in: 0...1) { policy.backoff.jitter = v }
            if policy.backoff.maxMilliseconds < policy.backoff.initialMilliseconds {
                file.error(backoffNode, "backoff max is smaller than backoff initial")
            }
        }
        if let codes = retries["no_retry_exit_codes"] {
            policy.noRetryExitCodes = (file.sequence(codes, "no_retry_exit_codes") ?? []).compactMap {
                file.int($0, "exit code", in: 0...255).map(Int32.init)
            }
        }
        return policy
    }

    private mutating func readTimeout(_ node: Node) -> TimeoutPolicy {
        var policy = TimeoutPolicy()
        if case .scalar = node {
            policy.maxRuntimeMilliseconds = file.duration(node, "timeout")
            return policy
        }
        guard let timeout = file.mapping(node, "timeout", allowed: DefinitionKeys.timeout) else { return policy }
        policy.maxRuntimeMilliseconds = timeout["max_runtime"].flatMap { file.duration($0, "max_runtime") }
        policy.maxQueuedMilliseconds = timeout["max_queued_time"].flatMap { file.duration($0, "max_queued_time") }
        return policy
    }

    mutating func readOverlap(_ node: Node) -> OverlapPolicy? {
        readChoice(node, "overlap", OverlapPolicy.self)
    }

    /// One of an enum's raw values, or an error listing them.
    mutating func readChoice<Choice: RawRepresentable & CaseIterable>(_ node: Node, _ what: String, _: Choice.Type) -> Choice?
    where Choice.RawValue == String {
        guard let text = file.string(node, what) else { return nil }
        guard let choice = Choice(rawValue: text) else {
            let names = Choice.allCases.map(\.rawValue)
            file.error(node, "\(what) \"\(text)\" is not one of \(names.joined(separator: ", "))",
                       hint: closest(to: text, in: names).map { "did you mean \"\($0)\"?" })
            return nil
        }
        return choice
    }

    private mutating func readCircuitBreaker(_ node: Node) -> CircuitBreakerPolicy? {
        guard let breaker = file.mapping(node, "circuit_breaker", allowed: DefinitionKeys.circuitBreaker) else { return nil }
        guard let thresholdNode = breaker["failure_threshold"], let cooldownNode = breaker["cooldown"] else {
            file.error(node, "circuit_breaker needs failure_threshold and cooldown", hint: "e.g. { failure_threshold: 5, cooldown: 10m }")
            return nil
        }
        guard let threshold = file.int(thresholdNode, "failure_threshold", in: 1...1000),
            let cooldown = file.duration(cooldownNode, "cooldown")
        else { return nil }
        return CircuitBreakerPolicy(failureThreshold: threshold, cooldownMilliseconds: cooldown)
    }
}
