import BelfryConfig
import BelfrySchedule
import Foundation

/// Why a run could not be prepared: a missing input, an unknown `{{name}}`, an unknown user.
public struct RunPreparationError: Error, Sendable, CustomStringConvertible {
    public var description: String
}

/// The inputs, command line and environment of a run (SPEC §4, "Job environment").
struct JobEnvironment {
    /// Input values: declared defaults, overlaid with the trigger's or the caller's.
    let inputs: [String: String]

    init(task: TaskDefinition, given: [String: String]) throws(RunPreparationError) {
        var inputs: [String: String] = [:]
        for param in task.params {
            if let value = given[param.name] ?? param.defaultValue {
                inputs[param.name] = value
            } else if param.required {
                throw RunPreparationError(description: "task \(task.fullName) needs input \"\(param.name)\": give --input \(param.name)=VALUE")
            }
        }
        for (name, value) in given where inputs[name] == nil {
            guard task.params.contains(where: { $0.name == name }) else {
                let known = task.params.map(\.name)
                throw RunPreparationError(description: "task \(task.fullName) has no param \"\(name)\""
                    + (known.isEmpty ? "" : "; its params: \(known.joined(separator: ", "))"))
            }
            inputs[name] = value
        }
        self.inputs = inputs
    }

    /// Input values a trigger gives for a slot: `trigger_time` is the slot instant.
    static func triggerInputs(_ trigger: TriggerDefinition, slot: Instant?) -> [String: String] {
        trigger.inputs.mapValues { value in
            switch value {
            case .literal(let text): text
            case .triggerTime: slot?.rfc3339 ?? ""
            }
        }
    }

    /// `BELFRY_INPUTS` as JSON, keys sorted.
    var inputsJSON: String {
        if inputs.isEmpty { return "{}" }  // most runs: no encoder made for them
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(inputs)) ?? Data("{}".utf8), as: UTF8.self)
    }

    /// The variables of one attempt, over the launching process's environment.
    func variables(
        base: [String: String], runID: Int64, task: String, trigger: String?, slot: Instant?, attempt: Int, database: String
    ) -> [String: String] {
        var env = base
        env["BELFRY_RUN_ID"] = String(runID)
        env["BELFRY_TASK"] = task
        env["BELFRY_TRIGGER"] = trigger ?? ""
        env["BELFRY_TRIGGER_TIME"] = slot?.rfc3339 ?? ""
        env["BELFRY_ATTEMPT"] = String(attempt)
        env["BELFRY_INPUTS"] = inputsJSON
        env["BELFRY_DATABASE"] = database
        for (name, value) in inputs { env["BELFRY_INPUT_" + name.uppercased().replacingOccurrences(of: "-", with: "_")] = value }
        return env
    }

    /// The program and its arguments, `{{name}}` replaced by input values. A shell command line
    /// is not expanded (the inputs are in its environment): pasting values into shell text would
    /// let an input run commands.
    func commandLine(_ command: Command) throws(RunPreparationError) -> (executable: String, arguments: [String]) {
        switch command {
        case .shell(let script):
            return ("/bin/sh", ["-c", script])
        case .arguments(let argv):
            var expanded: [String] = []
            for argument in argv { expanded.append(try expand(argument)) }
            return (expanded[0], Array(expanded.dropFirst()))
        }
    }

    private func expand(_ text: String) throws(RunPreparationError) -> String {
        var result = ""
        var rest = Substring(text)
        while let open = rest.range(of: "{{") {
            result += rest[..<open.lowerBound]
            guard let close = rest[open.upperBound...].range(of: "}}") else {
                result += rest[open.lowerBound...]
                return result
            }
            let name = rest[open.upperBound..<close.lowerBound].trimmingCharacters(in: .whitespaces)
            guard let value = inputs[name] else {
                throw RunPreparationError(description: "the command refers to {{\(name)}}, which is not an input of the task")
            }
            result += value
            rest = rest[close.upperBound...]
        }
        return result + rest
    }

    /// The ids and groups of `user` (a name or a number).
    static func user(_ name: String) throws(RunPreparationError) -> JobUser {
        guard let entry = getpwnam(name) ?? UInt32(name).flatMap({ getpwuid($0) }) else {
            throw RunPreparationError(description: "unknown user \"\(name)\" (from the environment's user:)")
        }
        let gid = entry.pointee.pw_gid
        // Its groups, as a login gives them (initgroups): the daemon's own (root's) are not kept.
        var count: Int32 = 32
        var groups = [gid_t](repeating: 0, count: Int(count))
        while getgrouplist(entry.pointee.pw_name, gid, &groups, &count) < 0 {
            groups = [gid_t](repeating: 0, count: Int(count))
        }
        return JobUser(uid: entry.pointee.pw_uid, gid: gid, groups: Array(groups.prefix(Int(count))))
    }
}

/// The user a task's jobs run as (`user:`): its ids and its supplementary groups.
struct JobUser: Sendable {
    var uid: UInt32
    var gid: UInt32
    var groups: [UInt32]
}
