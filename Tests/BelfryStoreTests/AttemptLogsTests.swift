import BelfryStore
import BelfryTesting
import Foundation
import Testing

@Suite("Attempt logs")
struct AttemptLogsTests {
    @Test("a log is empty while its attempt has printed nothing (no file is made until then), missing once its file is gone")
    func silentAttempts() throws {
        let directory = try TemporaryDirectory()
        let path = AttemptLogs.path(run: 3, attempt: 1, in: directory.path)
        func attempt(finished: Bool, tail: String?) -> AttemptRecord {
            AttemptRecord(number: 1, startedAt: Date(), finishedAt: finished ? Date() : nil, pid: 42, exitCode: finished ? 0 : nil, signal: nil,
                          timedOut: false, outputTail: tail.map { Data($0.utf8) }, logPath: path)
        }
        #expect(AttemptLogs.contents(of: attempt(finished: false, tail: nil)) == Data(), "running, nothing printed yet")
        #expect(AttemptLogs.contents(of: attempt(finished: true, tail: "")) == Data(), "ended without printing")
        #expect(AttemptLogs.contents(of: attempt(finished: true, tail: "done\n")) == nil, "printed, but its file is not here")
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data("done\n".utf8).write(to: URL(fileURLWithPath: path))
        #expect(AttemptLogs.contents(of: attempt(finished: true, tail: "done\n")) == Data("done\n".utf8))
        var unrecorded = attempt(finished: true, tail: "")
        unrecorded.logPath = nil
        #expect(AttemptLogs.contents(of: unrecorded) == nil)
    }

    @Test("a directory per thousand runs, named by its range; pruning removes exactly the pruned runs' logs, in either layout")
    func layoutAndPruning() throws {
        let directory = try TemporaryDirectory()
        let logs = directory.path + "/logs"
        #expect(AttemptLogs.path(run: 5042, attempt: 2, in: logs) == logs + "/5000-5999/5042-attempt-2.log")
        #expect(AttemptLogs.path(run: 7, attempt: 1, kind: "on_failure.log", in: logs) == logs + "/0-999/7-attempt-1.on_failure.log")
        let files = [
            AttemptLogs.path(run: 5042, attempt: 1, in: logs), AttemptLogs.path(run: 5042, attempt: 1, kind: "on_failure.log", in: logs),
            AttemptLogs.path(run: 5043, attempt: 1, in: logs), AttemptLogs.path(run: 7, attempt: 1, in: logs),
            logs + "/5/attempt-1.log",  // run 5, written by an earlier version
            logs + "/5042/attempt-1.log",
        ]
        for file in files {
            try FileManager.default.createDirectory(atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try Data("output".utf8).write(to: URL(fileURLWithPath: file))
        }

        AttemptLogs.remove(runs: [5042, 5, 7], in: logs)

        let exists = { (path: String) in FileManager.default.fileExists(atPath: path) }
        #expect(!exists(files[0]) && !exists(files[1]) && !exists(files[3]))
        #expect(exists(files[2]), "run 5043 was not pruned: removing the earlier layout's run 5 leaves 5000-5999 alone")
        #expect(!exists(logs + "/5"))
        #expect(!exists(logs + "/5042"), "the earlier layout's directory of a pruned run goes too")
        #expect(!exists(logs + "/0-999"), "left empty, it goes")
        #expect(exists(logs + "/5000-5999"))
    }
}
