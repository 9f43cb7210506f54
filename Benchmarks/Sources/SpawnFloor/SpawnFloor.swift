import Foundation
import Subprocess
import SystemPackage

/// The floor of slot lateness for a Swift launcher using swift-subprocess, as Belfry does:
/// sleeps to each whole second and starts COUNT copies of the stamp job at once with
/// `Subprocess.run` (each in its own session, as Belfry's attempts), for SECONDS seconds. No
/// database, no logs, no bookkeeping. `scripts/lateness.py` prints it beside Belfry's figures.
///
/// Usage: SpawnFloor COUNT STAMP OUT [SECONDS]
@main
struct SpawnFloor {
    static func main() async throws {
        let arguments = CommandLine.arguments
        guard arguments.count >= 4, let count = Int(arguments[1]) else {
            FileHandle.standardError.write(Data("usage: SpawnFloor COUNT STAMP OUT [SECONDS]\n".utf8))
            exit(2)
        }
        let (stamp, out) = (arguments[2], arguments[3])
        let seconds = arguments.count > 4 ? Int(arguments[4]) ?? 5 : 5
        let formatter = ISO8601DateFormatter()
        for _ in 0..<seconds {
            let now = Date().timeIntervalSince1970
            let slot = now.rounded(.down) + 1
            try await Task.sleep(for: .nanoseconds(Int64((slot - now) * 1e9)))
            let environment = Environment.inherit.updating(["BELFRY_TRIGGER_TIME": formatter.string(from: Date(timeIntervalSince1970: slot))])
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<count {
                    group.addTask {
                        var options = PlatformOptions()
                        options.createSession = true
                        _ = try? await Subprocess.run(.path(FilePath(stamp)), arguments: [out], environment: environment,
                                                      platformOptions: options, output: .discarded, error: .discarded)
                    }
                }
            }
        }
    }
}
