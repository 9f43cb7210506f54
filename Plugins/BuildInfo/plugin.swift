import Foundation
import PackagePlugin

/// Writes `BuildInfo.swift` into the `BelfryCommandLine` target: the git commit the binary was built from and
/// the Swift compiler that built it, for `belfry --version` and `belfry_build_info`. It runs again
/// whenever `.git/logs/HEAD` changes (every commit, checkout or reset appends to it).
@main
struct BuildInfo: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let output = context.pluginWorkDirectoryURL.appending(path: "BuildInfo.swift")
        let root = context.package.directoryURL
        let headLog = root.appending(path: ".git/logs/HEAD")
        let script = root.appending(path: "Plugins/BuildInfo/build-info.sh")
        var inputs = [script]
        if FileManager.default.fileExists(atPath: headLog.path) { inputs.append(headLog) }
        return [
            .buildCommand(
                displayName: "Recording the commit and compiler of this build",
                executable: URL(filePath: "/bin/sh"),
                arguments: [script.path, root.path, output.path],
                inputFiles: inputs,
                outputFiles: [output]
            )
        ]
    }
}
