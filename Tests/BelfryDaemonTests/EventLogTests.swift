@testable import BelfryDaemon
import BelfryTesting
import Foundation
import Logging
import Testing

@Suite("The daemon's log lines")
struct EventLogTests {
    @Test("durations are seconds with milliseconds, rounded", arguments: [
        (Duration.milliseconds(2413), "2.413s"), (.microseconds(2_413_600), "2.414s"), (.microseconds(500), "0.001s"),
        (.milliseconds(50), "0.050s"), (.microseconds(59_999_600), "60.000s"), (.zero, "0.000s"), (.seconds(3600), "3600.000s"),
        (.milliseconds(-1500), "-1.500s"),
    ])
    func seconds(duration: Duration, text: String) {
        #expect(Logger.seconds(duration) == text)
    }

    @Test("a text line: level, message, metadata sorted, values with spaces or empty quoted; JSON the same fields")
    func lines() throws {
        let captured = try TemporaryDirectory()
        let path = captured.path + "/stderr"
        for format in BelfryLogHandler.Format.allCases {
            let file = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            defer { close(file) }
            var handler = BelfryLogHandler(format: format, environment: [:], output: file)
            handler.metadata = ["task": "t.job"]
            handler.log(event: LogEvent(level: .warning, message: "attempt failed", metadata: ["reason": "exit 1", "empty": "", "run": "7"],
                                        source: "belfry", file: #fileID, function: #function, line: #line))
            let line = try String(contentsOfFile: path, encoding: .utf8)
            #expect(line.hasSuffix("\n") && line.filter { $0 == "\n" }.count == 1)
            switch format {
            case .text:
                #expect(line.split(separator: " ", maxSplits: 1).last.map(String.init) == #"warning attempt failed empty="" reason="exit 1" run=7 task=t.job"# + "\n")
            case .json:
                let object = try JSONDecoder().decode([String: String].self, from: Data(line.utf8))
                #expect(object["level"] == "warning" && object["message"] == "attempt failed" && object["reason"] == "exit 1"
                        && object["task"] == "t.job" && object["run"] == "7" && object["empty"] == "")
                #expect(object["time"]?.hasSuffix("Z") == true)
            }
        }
    }
}
