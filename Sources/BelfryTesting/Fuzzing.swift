import BelfryConfig
import BelfrySchedule
import Foundation

/// What fuzzing checks of one input (the libFuzzer targets in `Fuzz/` and the seeded mutation
/// tests share these): never a crash, always an error value or a valid result that keeps its
/// promises. Each returns a description of the broken promise, or nil.
public enum FuzzChecks {
    static let zones = ["UTC", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu", "Europe/Dublin"]
    // Around New York's and Lord Howe's 2026 changes, a leap day and the end of a century.
    static let instants: [Int64] = [1_772_953_200, 1_793_512_800, 1_775_314_800, 1_709_164_800, 4_102_444_799]

    /// A cron expression: rejected with an error naming a problem, or accepted with slots that
    /// strictly increase and are whole seconds after the instant asked about.
    public static func cron(_ bytes: [UInt8]) -> String? {
        let text = String(decoding: bytes, as: UTF8.self)
        let expression: CronExpression
        do {
            expression = try CronExpression(parsing: text)
        } catch {
            return error.description.isEmpty ? "empty error for \(text.debugDescription)" : nil
        }
        let zone = zones[bytes.count % zones.count]
        guard let rules = try? TimeZoneDatabase.system.rules(for: zone) else { return nil }
        for dst in [DSTPolicy.default, DSTPolicy(skipped: .shift, repeated: .twice)] {
            let schedule = CronSchedule(expression: expression, zone: rules, dst: dst)
            for start in instants {
                var previous = Instant(secondsSinceEpoch: start)
                for _ in 0..<4 {
                    guard let next = schedule.nextSlot(after: previous) else { break }
                    if next <= previous { return "\(text.debugDescription) in \(zone): \(next.rfc3339) after \(previous.rfc3339)" }
                    previous = next
                }
            }
        }
        return nil
    }

    /// A definition file: loaded, or rejected with diagnostics that each name the file and a
    /// line within it (0 only for whole-file problems).
    public static func definitions(_ bytes: [UInt8]) -> String? {
        do {
            _ = try DefinitionLoader.load(files: [("fuzz.yaml", bytes)])
            return nil
        } catch {
            // Lines as YAML counts them: LF, CR, CRLF, and NEL, LS, PS (YAML 1.1) break lines.
            let text = String(decoding: bytes, as: UTF8.self)
            let lines = text.unicodeScalars.split(omittingEmptySubsequences: false) { "\n\r\u{85}\u{2028}\u{2029}".unicodeScalars.contains($0) }.count
            if error.diagnostics.isEmpty { return "rejected without a diagnostic" }
            for diagnostic in error.diagnostics where diagnostic.file != "fuzz.yaml" || diagnostic.line > lines + 1 || diagnostic.message.isEmpty {
                return "bad diagnostic: \(diagnostic)"
            }
            return nil
        }
    }

    /// Seeded mutations of `seeds`: byte flips, insertions of characters that matter to the
    /// syntax, deletions, duplicated and spliced chunks. The same seed gives the same inputs.
    public struct Mutator {
        var state: UInt64
        let seeds: [[UInt8]]
        static let alphabet = Array("0123456789*/,-?LW#@ \t\n:{}[]\"'|>&!%.abcdefghijklmnopqrstuvwxyzMONFRIJANDEC".utf8) + [0, 0xC3, 0xFF]

        public init(seed: UInt64, seeds: [String]) {
            state = seed
            self.seeds = seeds.map { Array($0.utf8) }
        }

        mutating func random(_ bound: Int) -> Int {
            state &+= 0x9E37_79B9_7F4A_7C15  // SplitMix64
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return Int((z ^ (z >> 31)) % UInt64(max(bound, 1)))
        }

        public mutating func next() -> [UInt8] {
            var input = seeds[random(seeds.count)]
            for _ in 0...random(4) {
                let position = random(input.count + 1)
                switch random(6) {
                case 0 where !input.isEmpty: input[min(position, input.count - 1)] ^= UInt8(1 << random(8))
                case 1: input.insert(Self.alphabet[random(Self.alphabet.count)], at: position)
                case 2 where !input.isEmpty: input.remove(at: min(position, input.count - 1))
                case 3 where !input.isEmpty:
                    let start = random(input.count)
                    let chunk = input[start..<min(input.count, start + 1 + random(16))]
                    input.insert(contentsOf: chunk, at: position)
                case 4:
                    let other = seeds[random(seeds.count)]
                    let start = random(other.count + 1)
                    input = Array(input[..<position]) + Array(other[start...])
                default: input.insert(contentsOf: Array(String(random(100)).utf8), at: position)
                }
            }
            return input
        }
    }
}
