import ArgumentParser
import BelfryCommandLine
import BelfryDaemon
import BelfryHTTP
import BelfryListings
import BelfryStore
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle

/// `--http`, `--http-tokens`, `--http-insecure` of `belfry daemon`.
struct HTTPOptions: ParsableArguments {
    @Option(help: "Serve the HTTP API and /metrics at ADDRESS:PORT (e.g. 127.0.0.1:8457). Off unless given.")
    var http: String?

    @Option(help: "The tokens file (lines NAME ROLE TOKEN, mode 0600). Default: the state directory's http-tokens, created with one admin token at first start.")
    var httpTokens: String?

    @Flag(help: "Allow an address other than loopback without TLS (tokens then cross the network in clear text).")
    var httpInsecure = false

    @Option(help: "Serve over TLS with this certificate chain (PEM); with --http-tls-key.")
    var httpTlsCert: String?

    @Option(help: "The TLS private key (PEM) of --http-tls-cert.")
    var httpTlsKey: String?

    @Option(help: "Series per trigger in /metrics (next slot, last success): true or false. Off for very large deployments.")
    var metricsPerTrigger = true

    /// The tokens file: given, else `http-tokens` in the state directory.
    func tokensPath(stateDirectory: String) -> String {
        httpTokens ?? (stateDirectory as NSString).appendingPathComponent("http-tokens")
    }

    /// The server, or nil when `--http` is not given. Creates the tokens file with an admin
    /// token when it is missing, and says where (never the token itself).
    func server(
        store: any Store, stateDirectory: String, metrics: MetricsExporter, health: @escaping HTTPServer.Health,
        actions: HTTPServer.Actions, changed: @escaping @Sendable () async -> Void, log: Logger
    ) throws -> (any Service)? {
        guard let http else { return nil }
        let address: (host: String, port: Int, loopback: Bool)
        do { address = try HTTPServer.address(http) } catch { throw CommandFailure(error) }
        guard (httpTlsCert == nil) == (httpTlsKey == nil) else { throw CommandFailure("--http-tls-cert and --http-tls-key go together") }
        let tls = httpTlsCert.flatMap { cert in httpTlsKey.map { (certificate: cert, key: $0) } }
        if !address.loopback, tls == nil {
            guard httpInsecure else {
                throw CommandFailure("--http \(http) is not a loopback address: tokens would cross the network in clear text. Give --http-tls-cert and --http-tls-key, or say --http-insecure")
            }
            log.warning("the HTTP API listens beyond this machine without TLS (--http-insecure): tokens cross the network in clear text", metadata: ["address": "\(http)"])
        }
        let path = tokensPath(stateDirectory: stateDirectory)
        let tokens: HTTPTokens
        do {
            if !FileManager.default.fileExists(atPath: path) {
                _ = try HTTPTokens.add(name: "admin", role: .admin, to: path)
                log.notice("created the HTTP tokens file with an admin token; read it there, or make others with belfry http-token", metadata: ["file": "\(path)"])
            }
            tokens = try HTTPTokens.load(path: path)
        } catch {
            throw CommandFailure(error)
        }
        let router = HTTPServer.router(store: store, tokens: tokens, metrics: metrics, health: health, actions: actions, secure: tls != nil,
                                       changed: changed)
        // Said once the socket is bound: a client that reads the line can connect.
        let metadata: Logger.Metadata = ["address": "\(http)", "tls": "\(tls != nil)", "tokens": "\(path)", "token_count": "\(tokens.tokens.count)"]
        do {
            return try HTTPServer.application(router: router, host: address.host, port: address.port, tls: tls, logger: log) {
                log.notice("HTTP API listening", metadata: metadata)
            }
        } catch {
            throw CommandFailure(error)
        }
    }
}

/// `belfry http-token`: makes a token for the HTTP API and prints it.
struct HTTPToken: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "http-token",
        abstract: "Make a token for the daemon's HTTP API, add it to the tokens file and print it.",
        discussion: "The daemon reads the tokens file when it starts: restart it to use a new token. An admin token reads and changes; --read-only makes one that only reads.")

    @Option(help: "The token's name, recorded as updated_by of the changes made with it.") var name = ProcessInfo.processInfo.environment["USER"] ?? "admin"
    @Flag(help: "A token that reads only (every change is refused with 403).") var readOnly = false
    @Option(help: "The database, to find the state directory (as for the daemon).") var database: String?
    @Option(help: "The tokens file. Default: the state directory's http-tokens.") var httpTokens: String?

    func run() throws {
        let text = database ?? BelfryDatabase.defaultPath()
        let state = text.contains("://") ? localStateDirectory() : (text as NSString).deletingLastPathComponent
        let path = httpTokens ?? (state as NSString).appendingPathComponent("http-tokens")
        do {
            let token = try HTTPTokens.add(name: name, role: readOnly ? .read : .admin, to: path)
            print(token)
            writeToStandardError("belfry: added \(readOnly ? "read" : "admin") token \(name) to \(path); the daemon reads the file when it starts\n")
        } catch {
            throw CommandFailure(error)
        }
    }
}
