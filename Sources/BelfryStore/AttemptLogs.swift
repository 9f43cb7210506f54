import Foundation

/// Where attempts' output goes under a store's log directory: `logs/5000-5999/5042-attempt-1.log`
/// (and `5042-attempt-1.on_failure.log`): one directory per thousand runs. A
/// directory per run cost the daemon a fifth of its CPU in a burst of due runs (ext4 makes an
/// inode and a block for each); a directory per thousand is made by the first of them.
///
/// Runs recorded by earlier versions have `logs/RUN/attempt-N.log`. Readers use the path
/// recorded with each attempt, so both layouts are read; pruning removes both. A file is made at
/// an attempt's first output: one that has printed nothing has none (`contents(of:)`).
public enum AttemptLogs {
    static let runsPerDirectory: Int64 = 1000

    /// The log of `run`'s attempt `attempt`; `kind` "log" or "on_failure.log".
    public static func path(run: Int64, attempt: Int, kind: String = "log", in logDirectory: String) -> String {
        "\(directory(of: run, in: logDirectory))/\(run)-attempt-\(attempt).\(kind)"
    }

    /// `attempt`'s log: empty when the attempt has printed nothing (so far), nil when its file
    /// is not here (removed, or the attempt of another node that printed something).
    public static func contents(of attempt: AttemptRecord) -> Data? {
        guard let path = attempt.logPath else { return nil }
        if let data = FileManager.default.contents(atPath: path) { return data }
        return printedNothing(attempt) ? Data() : nil
    }

    /// Whether `attempt` has no log file because it has printed nothing (so far): its file is
    /// missing and the database holds no output of it.
    public static func printedNothing(_ attempt: AttemptRecord) -> Bool {
        guard let path = attempt.logPath, access(path, F_OK) != 0, errno == ENOENT else { return false }
        return (attempt.outputTail ?? Data()).isEmpty
    }

    /// `logs/5000-5999` for run 5042: never the name of an earlier layout's directory (a number).
    static func directory(of run: Int64, in logDirectory: String) -> String {
        let first = run / runsPerDirectory * runsPerDirectory
        return "\(logDirectory)/\(first)-\(first + runsPerDirectory - 1)"
    }

    /// Removes the logs of `runs` (pruned), in either layout. A directory of a thousand runs
    /// left empty goes too; a run starting in it meanwhile makes it again (`CappedLog`).
    public static func remove(runs: [Int64], in logDirectory: String) {
        let manager = FileManager.default
        for run in runs { try? manager.removeItem(atPath: "\(logDirectory)/\(run)") }  // the earlier layout
        for members in Dictionary(grouping: runs, by: { $0 / runsPerDirectory }).values {
            let directory = directory(of: members[0], in: logDirectory)
            guard let names = try? manager.contentsOfDirectory(atPath: directory) else { continue }
            let pruned = Set(members)
            for name in names {
                guard let dash = name.firstIndex(of: "-"), let run = Int64(name[..<dash]), pruned.contains(run) else { continue }
                unlink("\(directory)/\(name)")
            }
            rmdir(directory)  // only when empty
        }
    }
}
