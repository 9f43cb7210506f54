import BelfryConfig
import Foundation

/// What a deploy changes (SPEC §2), decided once for every backend from the definitions and
/// what is deployed: new triggers start active iff `auto_activate`, existing ones keep their
/// activation state, triggers and tasks no longer defined go. Each backend writes the plan in
/// one transaction.
package struct DeployPlan {
    /// What a store holds before the deploy.
    package struct Deployed {
        /// Environment name → fingerprint of the file it was deployed from.
        package var hashes: [String: String] = [:]
        /// Task full name → id and definition (JSON).
        package var tasks: [String: (id: Int64, definition: Data)] = [:]
        /// `ENV.TASK TRIGGER` → id, definition (JSON) and activation.
        package var triggers: [String: (id: Int64, definition: Data, active: Bool)] = [:]

        package init() {}
    }

    package struct NewTrigger {
        package var task: String
        package var name: String
        package var columns: ScheduleColumns
        package var definition: Data
        package var active: Bool
    }

    package var environments: [EnvironmentDefinition]
    package var newTasks: [(name: String, environment: String, definition: Data)] = []
    package var changedTasks: [(id: Int64, environment: String, definition: Data)] = []
    package var newTriggers: [NewTrigger] = []
    package var changedTriggers: [(id: Int64, columns: ScheduleColumns, definition: Data)] = []
    package var deletedTriggers: [Int64] = []
    package var deletedTasks: [Int64] = []
    package var summary = DeploySummary()

    /// `encoded`: the JSON of the tasks of changed files, made before the transaction
    /// (`BelfryDatabase.encode`); other tasks are encoded here when needed.
    package init(_ definitions: Definitions, deployed: Deployed, encoded: [String: (task: Data, triggers: [Data])]) throws {
        environments = definitions.environments
        var keptTasks = Set<String>()
        var keptTriggers = Set<String>()
        for environment in definitions.environments {
            let sameFile = deployed.hashes[environment.name] == environment.sourceHash
            for task in environment.tasks {
                if sameFile, deployed.tasks[task.fullName] != nil,
                    task.triggers.allSatisfy({ deployed.triggers["\(task.fullName) \($0.name)"] != nil })
                {
                    // Deployed from the same bytes and all still there: unchanged.
                    keptTasks.insert(task.fullName)
                    for trigger in task.triggers {
                        let key = "\(task.fullName) \(trigger.name)"
                        keptTriggers.insert(key)
                        summary.unchanged += 1
                        if deployed.triggers[key]!.active { summary.active += 1 } else { summary.inactive += 1 }
                    }
                    continue
                }
                let (taskJSON, triggerJSON) = try encoded[task.fullName] ?? BelfryDatabase.encode([task])[0]
                if let old = deployed.tasks[task.fullName] {
                    if old.definition != taskJSON { changedTasks.append((old.id, environment.name, taskJSON)) }
                } else {
                    newTasks.append((task.fullName, environment.name, taskJSON))
                }
                keptTasks.insert(task.fullName)
                for (trigger, json) in zip(task.triggers, triggerJSON) {
                    let key = "\(task.fullName) \(trigger.name)"
                    keptTriggers.insert(key)
                    let columns = ScheduleColumns(trigger.schedule)
                    if let old = deployed.triggers[key] {
                        if old.definition == json {
                            summary.unchanged += 1
                        } else {
                            changedTriggers.append((old.id, columns, json))
                            summary.changed.append(key)
                        }
                        if old.active { summary.active += 1 } else { summary.inactive += 1 }
                    } else {
                        newTriggers.append(NewTrigger(task: task.fullName, name: trigger.name, columns: columns, definition: json,
                                                      active: trigger.autoActivate))
                        summary.added.append(key)
                        if trigger.autoActivate { summary.active += 1 } else { summary.inactive += 1 }
                    }
                }
            }
        }
        for (key, old) in deployed.triggers where !keptTriggers.contains(key) {
            deletedTriggers.append(old.id)
            summary.deleted.append(key)
        }
        deletedTasks = deployed.tasks.filter { !keptTasks.contains($0.key) }.map(\.value.id)
        summary.added.sort()
        summary.changed.sort()
        summary.deleted.sort()
    }
}
