import ApusDataflow
import Testing

/// `send_logs_as`, `min_log_level`, `max_log_size` and `max_rotated_files` (their effects are in
/// Tests/python/test_dora_examples.py).
@Suite struct LoggingKeysTests {
    @Test func theKeysAreRead() throws {
        let dataflow = try Fixtures.load(
            """
            nodes:
              - id: sensor
                path: /bin/true
                outputs: [reading, logs]
                send_logs_as: logs
                min_log_level: warn
                max_log_size: 50MB
                max_rotated_files: 3
              - id: other
                path: /bin/true
                max_log_size: 4096
            """)
        let sensor = try #require(dataflow.node("sensor"))
        #expect(sensor.sendLogsAs == "logs" && sensor.minLogLevel == .warn && sensor.maxLogSize == 50 << 20 && sensor.maxRotatedFiles == 3)
        #expect(dataflow.node("other")?.maxLogSize == 4096 && dataflow.node("other")?.maxRotatedFiles == 5)
        #expect(LogLevel.stdout < .trace && LogLevel.info < .warn && LogLevel.warn < .error)
    }

    @Test func mistakesAreNamed() {
        #expect(
            Fixtures.diagnostics(
                """
                nodes:
                  - id: sensor
                    path: /bin/true
                    outputs: [out]
                    send_stdout_as: out
                    send_logs_as: out
                    min_log_level: verbose
                    max_log_size: 12
                    max_rotated_files: 2
                  - id: runtime
                    operator:
                      id: op
                      build: make
                      python: op.py
                      send_logs_as: logs
                  - id: quiet
                    path: /bin/true
                    send_logs_as: logs
                    max_log_size: lots
                """) == [
                    "6:19: node 'sensor': key 'send_logs_as': 'out' already carries its stdout (send_stdout_as): name another output",
                    "7:20: node 'sensor': key 'min_log_level': unknown value 'verbose' (expected one of stdout, trace, debug, info, warn, error)",
                    "8:19: node 'sensor': key 'max_log_size': '12' is less than 1KB",
                    "9:24: node 'sensor': key 'max_rotated_files': has no effect without max_log_size (the size at which the log rotates)",
                    "15:7: node 'runtime': operator 'op': send_logs_as applies to the output of a process: set it on the runtime node, whose process runs this operator",
                    "18:19: node 'quiet': key 'send_logs_as': 'logs' is not a declared output (it has no outputs)",
                    "19:19: node 'quiet': key 'max_log_size': 'lots' is not a size (write bytes, or a number with KB, MB or GB)",
                ])
    }
}
