import BelfrySchedule
import Yams

extension EnvironmentReader {
    mutating func readTrigger(_ node: Node, task: TaskDefinition) -> TriggerDefinition? {
        var keys: [String: Node]
        if case .scalar = node, let text = file.string(node, "trigger") {
            // A bare name: a predefined trigger.
            keys = ["predefined": node]
            guard PredefinedTrigger(rawValue: text) != nil else {
                file.error(node, "\"\(text)\" is not a predefined trigger",
                           hint: "use one of \(PredefinedTrigger.allCases.map(\.rawValue).joined(separator: ", ")), or a mapping with cron: or every:")
                return nil
            }
        } else {
            guard let mapping = file.mapping(node, "trigger", allowed: DefinitionKeys.trigger) else { return nil }
            keys = mapping
        }
        let kinds = ["cron", "every", "interval_minutes", "predefined"].filter { keys[$0] != nil }
        guard kinds.count == 1 else {
            file.error(node, kinds.isEmpty ? "trigger has no schedule" : "trigger has both \(kinds.joined(separator: " and "))",
                       hint: "give exactly one of cron:, every:, interval_minutes: or predefined:")
            return nil
        }
        let timezone = keys["timezone"].flatMap { zoneNode -> String? in
            guard let name = file.string(zoneNode, "timezone") else { return nil }
            do {
                _ = try zones.rules(for: name)
                return name
            } catch {
                file.error(zoneNode, "timezone: \(error)")
                return nil
            }
        }
        if keys["timezone"] != nil, timezone == nil { return nil }
        let zoneName = timezone ?? "UTC"

        var name = keys["name"].flatMap { file.name($0, "trigger name") }
        var inputs = keys["inputs"].map { readInputs($0, task: task) } ?? [:]
        let schedule: TriggerSchedule
        switch kinds[0] {
        case "predefined":
            let predefinedNode = keys["predefined"]!
            guard let text = file.string(predefinedNode, "predefined"),
                let predefined = PredefinedTrigger(rawValue: text)
            else {
                file.error(predefinedNode, "not a predefined trigger", hint: "use one of \(PredefinedTrigger.allCases.map(\.rawValue).joined(separator: ", "))")
                return nil
            }
            name = name ?? predefined.rawValue
            var inputKey = "trigger_time"
            if let keyNode = keys["trigger_time_input_key"], let key = file.string(keyNode, "trigger_time_input_key") {
                guard task.params.contains(where: { $0.name == key }) else {
                    file.error(keyNode, "trigger_time_input_key \"\(key)\" is not a param of task \"\(task.fullName)\"",
                               hint: declaredParamsHint(task, near: key))
                    return nil
                }
                inputKey = key
            }
            if inputs[inputKey] == nil { inputs[inputKey] = .triggerTime }
            guard let cron = readCron(predefinedNode, expression: predefined.expression, zone: zoneName, keys: keys,
                                      hashKey: TriggerSchedule.hashKey(task: task.fullName, trigger: name ?? "")) else { return nil }
            schedule = cron
        case "cron":
            let cronNode = keys["cron"]!
            guard let expression = file.string(cronNode, "cron"),
                let cron = readCron(cronNode, expression: expression, zone: zoneName, keys: keys,
                                    hashKey: TriggerSchedule.hashKey(task: task.fullName, trigger: name ?? ""))
            else { return nil }
            schedule = cron
        default:
            let intervalNode = keys["every"] ?? keys["interval_minutes"]!
            let interval: Int64?
            if keys["every"] != nil {
                interval = file.duration(intervalNode, "every").flatMap { milliseconds in
                    guard milliseconds % 1000 == 0, milliseconds >= 1000 else {
                        file.error(intervalNode, "every must be a whole number of seconds, at least 1s")
                        return nil
                    }
                    return milliseconds / 1000
                }
            } else {
                interval = file.int(intervalNode, "interval_minutes", in: 1...527_040).map { Int64($0) * 60 }
            }
            var start: Instant?
            if let startNode = keys["start_time"], let text = file.string(startNode, "start_time") {
                do {
                    start = try InstantText.parse(text, zone: zones.rules(for: zoneName), field: "start_time")
                } catch {
                    file.error(startNode, "\(error)")
                    return nil
                }
            }
            if let dstNode = keys["dst"] {
                file.error(dstNode, "dst applies to cron triggers only", hint: "fixed rates run in absolute time")
            }
            guard let interval else { return nil }
            schedule = .every(intervalSeconds: interval, startTime: start, timezone: zoneName)
        }
        if kinds[0] != "every", kinds[0] != "interval_minutes", let startNode = keys["start_time"] {
            file.error(startNode, "start_time applies to every: and interval_minutes: triggers only")
        }
        guard let name else {
            file.error(node, "trigger has no name", hint: "add name: in snake_case or kebab-case")
            return nil
        }
        for param in task.params where param.required && inputs[param.name] == nil {
            file.error(node, "trigger \"\(name)\" does not give required input \"\(param.name)\" of task \"\(task.fullName)\"",
                       hint: "add inputs: { \(param.name): ... }")
        }
        var env = task.env
        if let envNode = keys["env"] { env.merge(file.stringMap(envNode, "trigger env")) { $1 } }
        var queue = task.queue
        if let queueNode = keys["queue"], let queueName = file.name(queueNode, "queue") {
            queue = queueName
            queueReferences.append((queueName, queueNode))
        }
        return TriggerDefinition(
            name: name, schedule: schedule,
            description: file.string(keys["description"], "trigger description", maxLength: 255),
            autoActivate: keys["auto_activate"].flatMap { file.bool($0, "auto_activate") } ?? true,
            inputs: inputs, env: env, queue: queue,
            labels: keys["labels"].map { file.stringMap($0, "labels") } ?? [:],
            annotations: keys["annotations"].map { file.stringMap($0, "annotations") } ?? [:],
            catchUp: keys["catch_up"].map { readCatchUp($0) } ?? CatchUpPolicy(),
            startingDeadlineMilliseconds: keys["starting_deadline"].flatMap { file.duration($0, "starting_deadline") },
            overlap: keys["overlap"].flatMap { readOverlap($0) } ?? task.overlap)
    }

    /// A cron schedule, with the engine's error (or warning) positioned at the offending
    /// character, and a note when its times meet a DST change.
    private mutating func readCron(_ node: Node, expression: String, zone: String, keys: [String: Node], hashKey: String) -> TriggerSchedule? {
        var dst = DSTPolicy.default
        if let dstNode = keys["dst"], let policy = file.mapping(dstNode, "dst", allowed: DefinitionKeys.dst) {
            if let n = policy["skipped"], let v = readChoice(n, "dst skipped", DSTPolicy.Skipped.self) { dst.skipped = v }
            if let n = policy["repeated"], let v = readChoice(n, "dst repeated", DSTPolicy.Repeated.self) { dst.repeated = v }
        }
        let hashed = expression.contains { $0 == "H" || $0 == "h" }
        let key = "\(expression)\u{0}\(zone)\u{0}\(dst.skipped.rawValue)\u{0}\(dst.repeated.rawValue)" + (hashed ? "\u{0}\(hashKey)" : "")
        if checkedCron[key] == nil {
            do {
                checkedCron[key] = .success(try CronSchedule(parsing: expression, zone: zones.rules(for: zone), dst: dst, hashKey: hashKey))
            } catch let error as CronError {
                checkedCron[key] = .failure(error)
            } catch {
                file.error(node, "\(error)")
                return nil
            }
        }
        var quote = 0
        if case .scalar(let scalar) = node, scalar.style == .singleQuoted || scalar.style == .doubleQuoted { quote = 1 }
        switch checkedCron[key]! {
        case .failure(let error):
            file.error(node, "cron: \(error.description)", columnOffset: quote + error.column - 1)
            return nil
        case .success(let schedule):
            for warning in schedule.expression.warnings {
                file.notice(.warning, node, "cron: \(warning.brief)", columnOffset: quote + warning.column - 1)
            }
            let (gap, repeated) = schedule.dstEncounters(after: now)
            if let note = DSTNote.text(expression: schedule.expression.resolved, zone: zone, policy: dst, gap: gap, repeated: repeated) {
                file.notice(.note, node, note, columnOffset: quote)
            }
        }
        return .cron(expression: expression, timezone: zone, skipped: dst.skipped, repeated: dst.repeated)
    }

    private mutating func readInputs(_ node: Node, task: TaskDefinition) -> [String: InputValue] {
        var inputs: [String: InputValue] = [:]
        for (name, keyNode, value) in file.entries(node, "inputs") ?? [] {
            guard task.params.contains(where: { $0.name == name }) else {
                file.error(keyNode, "input \"\(name)\" is not a param of task \"\(task.fullName)\"", hint: declaredParamsHint(task, near: name))
                continue
            }
            guard let text = file.string(value, "input \(name)") else { continue }
            inputs[name] = text == "trigger_time" ? .triggerTime : .literal(text)
        }
        return inputs
    }

    private func declaredParamsHint(_ task: TaskDefinition, near word: String) -> String {
        let names = task.params.map(\.name)
        if let match = closest(to: word, in: names) { return "did you mean \"\(match)\"?" }
        return names.isEmpty ? "the task declares no params: add them under params:" : "declared params: \(names.joined(separator: ", "))"
    }

    private mutating func readCatchUp(_ node: Node) -> CatchUpPolicy {
        var policy = CatchUpPolicy()
        if case .scalar = node {
            policy.mode = readChoice(node, "catch_up", CatchUpPolicy.Mode.self) ?? .latest
            return policy
        }
        guard let settings = file.mapping(node, "catch_up", allowed: DefinitionKeys.catchUp) else { return policy }
        if let n = settings["policy"], let mode = readChoice(n, "catch_up policy", CatchUpPolicy.Mode.self) { policy.mode = mode }
        if let n = settings["limit"], let limit = file.int(n, "catch_up limit", in: 1...100_000) { policy.limit = limit }
        return policy
    }
}
