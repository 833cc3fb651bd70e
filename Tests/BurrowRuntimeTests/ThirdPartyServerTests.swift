import BurrowAudit
import BurrowTestSupport
import Foundation
import Testing

/// The official MCP SDK client lives in mcp-server-fetch's venv.
let mcpClientPython = "/opt/burrow/venvs/mcp-server-fetch/bin/python3"

/// Third-party MCP servers from PyPI, unmodified, each under its shipped
/// least-privilege profile (Profiles/), through `burrow mcp` and the official
/// MCP client (Tests/MCPServers/mcp_client.py): initialize, tools/list and
/// real calls whose answers are checked; what a server writes is read back on
/// the host. Installed by Scripts/install-tools.sh.
@Suite(
    .serialized, .requires(.rootInInitialUserNamespace), .requires(.sandboxNamespaces), .requires(.landlock), .requires(.cgroupLimits),
    .requires(.installed(mcpClientPython)), .timeLimit(.minutes(5)))
struct ThirdPartyServerTests: SandboxTesting {
    let directory: String

    init() throws { directory = try Self.makeDirectory() }

    struct Server: Sendable, CustomTestStringConvertible {
        var profile: String
        /// The venv's entry point (what proves the server is installed) and the command, with `${…}` parameters.
        var command: [String]
        /// Parameter name → directory created below the test's directory.
        var directories: [String: String] = [:]
        var environment: [String: String] = [:]
        /// Files put in a parameter's directory before the run: (parameter, name, contents).
        var files: [(String, String, String)] = []
        /// Calls, each (tool, arguments as JSON with `$DIR_name` for a directory, expected text, isError).
        var calls: [(String, String, String, Bool)]
        /// Files the server must have written: (parameter, name, first bytes).
        var written: [(String, String, String)] = []
        var testDescription: String { profile }
    }

    static let venvs = "/opt/burrow/venvs"
    static let servers: [Server] = [
        Server(
            profile: "mcp-server-sqlite", command: ["\(venvs)/mcp-server-sqlite/bin/mcp-server-sqlite", "--db-path", "${data}/test.db"], directories: ["data": "db"],
            calls: [
                ("create_table", #"{"query": "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER)"}"#, "Table created successfully", false),
                ("write_query", #"{"query": "INSERT INTO items (name, qty) VALUES ('apple', 3), ('pear', 5)"}"#, "'affected_rows': 2", false),
                ("read_query", #"{"query": "SELECT name, qty FROM items ORDER BY qty DESC"}"#, "[{'name': 'pear', 'qty': 5}, {'name': 'apple', 'qty': 3}]", false),
            ],
            written: [("data", "test.db", "SQLite format 3")]),
        Server(
            profile: "mcp-server-duckdb", command: ["\(venvs)/mcp-server-duckdb/bin/mcp-server-duckdb", "--db-path", "${data}/lake.duckdb"], directories: ["data": "duck"],
            calls: [
                ("query", #"{"query": "CREATE TABLE t (id INTEGER, name VARCHAR)"}"#, "[]", false),
                ("query", #"{"query": "INSERT INTO t VALUES (1, 'alpha'), (2, 'beta')"}"#, "(2,)", false),
                ("query", #"{"query": "SELECT sum(id) AS s, string_agg(name, ',' ORDER BY id) AS n FROM t"}"#, "(3, 'alpha,beta')", false),
            ],
            written: [("data", "lake.duckdb", "")]),
        Server(
            profile: "mcp-server-calculator", command: ["\(venvs)/mcp-server-calculator/bin/mcp-server-calculator"],
            calls: [
                ("calculate", #"{"expression": "2+3*4"}"#, "14", false),
                ("calculate", #"{"expression": "sqrt(16) + 2^10"}"#, "1028", false),
                ("calculate", #"{"expression": "__import__('os')"}"#, "__import__", true),
            ]),
        Server(
            profile: "mcp-shell-server", command: ["\(venvs)/mcp-shell-server/bin/mcp-shell-server"], environment: ["ALLOW_COMMANDS": "echo,wc,cat,ls"],
            calls: [
                ("shell_execute", #"{"command": ["echo", "hi"]}"#, "hi", false),
                ("shell_execute", #"{"command": ["wc", "-c"], "stdin": "hello"}"#, "5", false),
                ("shell_execute", #"{"command": ["rm", "-rf", "/tmp/x"]}"#, "not allowed", true),
            ]),
        Server(
            profile: "cli-mcp-server", command: ["\(venvs)/cli-mcp-server/bin/cli-mcp-server"], directories: ["dir": "cli"],
            // Burrow writes the parameter into the variable's value.
            environment: ["ALLOWED_DIR": "${dir}", "ALLOWED_COMMANDS": "ls,cat,echo"], files: [("dir", "a.txt", "hello file\n")],
            calls: [
                ("run_command", #"{"command": "cat a.txt"}"#, "hello file", false),
                ("run_command", #"{"command": "ls"}"#, "a.txt", false),
            ]),
        Server(
            profile: "excel-mcp-server", command: ["\(venvs)/excel-mcp-server/bin/excel-mcp-server", "stdio", "--allow-dir", "${dir}"], directories: ["dir": "sheets"],
            calls: [
                ("create_workbook", #"{"path": "$DIR_dir/book.xlsx", "sheets": ["Data"]}"#, "book.xlsx", false),
                (
                    "write_range", #"{"path": "$DIR_dir/book.xlsx", "sheet": "Data", "at": "A1", "rows": [["item", "qty"], ["apple", 3], ["pear", 5], ["total", "=SUM(B2:B3)"]]}"#,
                    "cells_written", false
                ),
                ("read_range", #"{"path": "$DIR_dir/book.xlsx", "sheet": "Data", "range": "A4:B4"}"#, "8", false),
            ],
            written: [("dir", "book.xlsx", "PK")]),
        Server(
            profile: "mcp-memex", command: ["\(venvs)/mcp-memex/bin/python3", "-m", "memex.server"], directories: ["store": "memex"],
            environment: ["MEMEX_DIR": "${store}", "MEMEX_GLOBAL": "1"],
            calls: [
                ("mem_save", #"{"task": "Chose DuckDB for the analytics store", "decisions": ["one file per tenant"], "warnings": ["clean the WAL"], "tags": ["db"]}"#, "Saved memory", false),
                ("mem_search", #"{"query": "duckdb"}"#, "Chose DuckDB for the analytics store", false),
            ],
            written: [("store", "global.db", "SQLite format 3")]),
        Server(
            profile: "mcp-pandoc", command: ["\(venvs)/mcp-pandoc/bin/mcp-pandoc"], directories: ["docs": "docs"],
            calls: [
                ("convert-contents", ##"{"contents": "# Hello\n\nSome *emphasis*.\n", "input_format": "markdown", "output_format": "html"}"##, "<em>emphasis</em>", false),
                (
                    "convert-contents", ##"{"contents": "# Report\n\nValue is **42**.\n", "input_format": "markdown", "output_format": "docx", "output_file": "$DIR_docs/out.docx"}"##,
                    "successfully", false
                ),
                ("convert-contents", #"{"input_file": "$DIR_docs/out.docx", "input_format": "docx", "output_format": "markdown"}"#, "**42**", false),
            ],
            written: [("docs", "out.docx", "PK")]),
        Server(
            profile: "markitdown-mcp", command: ["\(venvs)/markitdown-mcp/bin/markitdown-mcp"], directories: ["docs": "pages"],
            files: [("docs", "page.html", "<html><body><h1>Survey Title</h1><p>Converted by markitdown.</p></body></html>\n")],
            calls: [("convert_to_markdown", #"{"uri": "file://$DIR_docs/page.html"}"#, "# Survey Title", false)]),
        Server(
            profile: "mcp-text-editor", command: ["\(venvs)/mcp-text-editor/bin/mcp-text-editor"], directories: ["root": "notes"],
            files: [("root", "notes.txt", "line one\nline two\nline three\n")],
            calls: [
                ("get_text_file_contents", #"{"files": [{"file_path": "$DIR_root/notes.txt", "ranges": [{"start": 2, "end": 2}]}]}"#, "line two", false),
                (
                    "edit_text_file_contents",
                    #"{"files": [{"path": "$DIR_root/notes.txt", "file_hash": "{{0.file_hash}}", "patches": [{"line_start": 2, "line_end": 2, "contents": "line TWO edited\n", "range_hash": "{{0.range_hash}}"}]}]}"#,
                    #""result": "ok""#, false
                ),
                // Outside its root the server would go; the sandbox has nothing there.
                ("get_text_file_contents", #"{"files": [{"file_path": "/etc/shadow", "ranges": [{"start": 1, "end": 1}]}]}"#, "", true),
            ],
            written: [("root", "notes.txt", "line one\nline TWO edited\nline three\n")]),
    ]

    @Test("a third-party MCP server from PyPI answers real calls under its shipped profile, through burrow mcp", arguments: servers)
    func server(_ s: Server) throws {
        try Requirement.installed(s.command[0]).check()
        let policy = directory + "/burrow.toml"
        try "[parameters]\nallowed_roots = [\"\(directory)\"]\n".write(toFile: policy, atomically: true, encoding: .utf8)
        let (paths, spec) = try Self.prepare(s, in: directory)
        let burrow =
            [Subprocess.burrow, "mcp", "--policy", policy, "--profile", Fixtures.profilesDirectory + "/\(s.profile).toml"]
            + paths.sorted { $0.key < $1.key }.flatMap { ["--param", "\($0.key)=\($0.value)"] }
        let result = try Subprocess.run(
            [mcpClientPython, Fixtures.repositoryRoot + "/Tests/MCPServers/mcp_client.py", spec, "--"] + burrow + ["--"] + s.command,
            environment: burrowEnvironment.merging(s.environment) { $1 }, directory: directory)
        try Self.check(result, s, paths: paths, audit: try auditLog())
    }

    /// The server's directories (owned by `owner` when given) and files, and its call spec.
    static func prepare(_ s: Server, in directory: String, owner: String? = nil) throws -> (paths: [String: String], spec: String) {
        var paths: [String: String] = [:]
        for (name, sub) in s.directories {
            let path = directory + "/" + sub
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            paths[name] = path
        }
        for (parameter, name, contents) in s.files { try contents.write(toFile: try #require(paths[parameter]) + "/" + name, atomically: true, encoding: .utf8) }
        if let owner {
            for path in paths.values { try #require(try Subprocess.run(["/bin/chown", "-R", "\(owner):\(owner)", path]).status == 0) }
        }
        var calls: [[String: Any]] = []
        for (tool, arguments, expect, isError) in s.calls {
            var text = arguments
            for (name, path) in paths { text = text.replacingOccurrences(of: "$DIR_\(name)", with: path) }
            let parsed = try JSONSerialization.jsonObject(with: Data(text.utf8))
            calls.append(["tool": tool, "arguments": parsed, "expect": expect, "isError": isError])
        }
        let spec = directory + "/\(s.profile)-spec.json"
        try JSONSerialization.data(withJSONObject: ["calls": calls]).write(to: URL(fileURLWithPath: spec))
        chmod(spec, 0o644)
        return (paths, spec)
    }

    /// Every call answered as expected, tools listed, no violation, the server's files on the host.
    static func check(_ result: Subprocess.Result, _ s: Server, paths: [String: String], audit: AuditStore) throws {
        let line = result.output.split(separator: "\n").last { $0.hasPrefix("{") }
        let report = try #require(line.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }, "\(result.output)\n\(result.stderr)")
        #expect(result.status == 0 && report["ok"] as? Bool == true, "\(report["calls"] ?? "")\n\(result.stderr.suffix(3000))")
        #expect(!(report["tools"] as? [String] ?? []).isEmpty, "tools/list")
        // Expected refusals are quiet (the profile's quiet_refusals); any other would be a SecurityViolation.
        let violations = try audit.events(AuditQuery(types: [.securityViolation]))
        #expect(violations.isEmpty, "\(violations.map(\.details))")
        for (parameter, name, head) in s.written {
            let data = try Data(contentsOf: URL(fileURLWithPath: try #require(paths[parameter]) + "/" + name))
            #expect(data.count > 0 && data.starts(with: Data(head.utf8)), "\(name) written on the host")
        }
    }
}

/// The same servers, each started by a normal user's MCP client as `burrow
/// mcp --profile NAME`: a client of burrowd, which runs the relay.
@Suite(
    .serialized, .requires(.rootInInitialUserNamespace), .requires(.sandboxNamespaces), .requires(.landlock), .requires(.cgroupLimits),
    .requires(.installed(mcpClientPython)), .requires(.installed("/usr/bin/setpriv")), .requires(.installed("/usr/sbin/useradd")), .timeLimit(.minutes(5)))
final class ThirdPartyServerUserTests: SessionFixture {
    @Test("a normal user in burrowd's socket group runs the same server by name through burrowd, with the same answers", arguments: ThirdPartyServerTests.servers)
    func server(_ s: ThirdPartyServerTests.Server) throws {
        try Requirement.installed(s.command[0]).check()
        try startDaemon("[parameters]\nallowed_roots = [\"\(directory)\"]")
        let (paths, spec) = try ThirdPartyServerTests.prepare(s, in: directory, owner: alice)
        let burrow =
            [Subprocess.burrow, "mcp", "--socket", socket, "--profile", s.profile] + paths.sorted { $0.key < $1.key }.flatMap { ["--param", "\($0.key)=\($0.value)"] }
        let result = try Subprocess.run(
            setpriv(alice) + [mcpClientPython, Fixtures.repositoryRoot + "/Tests/MCPServers/mcp_client.py", spec, "--"] + burrow + ["--"] + s.command,
            environment: s.environment, directory: home(alice))
        try ThirdPartyServerTests.check(result, s, paths: paths, audit: try auditLog())
        let invoked = try auditLog().events(AuditQuery(types: [.toolInvoked]))
        #expect(!invoked.isEmpty && invoked.allSatisfy { $0.context.principal == alice }, "every invocation is the user's")
    }
}
