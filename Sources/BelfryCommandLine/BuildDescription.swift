import BelfryStore

/// What this binary is, for `belfry --version` and `/metrics`' `belfry_build_info`. The commit and
/// the compiler's version are written at build time (Plugins/BuildInfo).
public enum BuildDescription {
    public static let version = "0.6.0"

    public static var labels: [(String, String)] {
        [("version", version), ("commit", buildCommit), ("swift", buildSwiftVersion), ("sqlite", BelfryDatabase.sqliteVersion)]
    }

    /// `belfry 0.6.0 (commit 0123456789ab, Swift 6.3.1, SQLite 3.40.1)`
    public static var line: String {
        "belfry \(version) (commit \(buildCommit), Swift \(buildSwiftVersion), SQLite \(BelfryDatabase.sqliteVersion))"
    }
}
