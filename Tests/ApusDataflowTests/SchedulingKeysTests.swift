import ApusDataflow
import Testing

/// `restart_window`, `cpu_affinity`, `health_check_timeout` and `health_check_interval` (their
/// effects are in Tests/python/test_dora_fault_keys.py).
@Suite struct SchedulingKeysTests {
    @Test func theKeysAreRead() throws {
        let dataflow = try Fixtures.load(
            """
            nodes:
              - id: a
                path: /bin/true
                restart_policy: on-failure
                restart_window: 300.0
                cpu_affinity: [0, 1]
              - id: b
                path: /bin/true
                cpu_affinity: 3
            """)
        #expect(dataflow.node("a")?.restartWindow == 300 && dataflow.node("a")?.cpuAffinity == [0, 1])
        #expect(dataflow.node("b")?.cpuAffinity == [3] && dataflow.node("b")?.restartWindow == nil)
    }

    @Test func mistakesAreNamed() {
        #expect(
            Fixtures.diagnostics(
                """
                nodes:
                  - id: a
                    path: /bin/true
                    restart_window: -1
                    cpu_affinity: []
                  - id: b
                    path: /bin/true
                    cpu_affinity: [one, 5000]
                  - id: c
                    path: /bin/true
                    cpu_affinity: {cpu: 1}
                """) == [
                    "4:21: node 'a': key 'restart_window': must be a finite number of seconds greater than 0, found -1",
                    "5:19: node 'a': key 'cpu_affinity': names no CPU; leave it out to run on any",
                    "8:20: node 'b': key 'cpu_affinity': expected an integer, found the string 'one'",
                    "8:25: node 'b': key 'cpu_affinity': must be at most 1023, found 5000",
                    "11:19: node 'c': key 'cpu_affinity': expected a list of CPU numbers, found a mapping",
                ])
    }

    @Test func healthChecks() throws {
        let dataflow = try Fixtures.load(
            """
            health_check_interval: 0.5
            nodes:
              - id: a
                path: /bin/true
                health_check_timeout: 30.0
            """)
        #expect(dataflow.healthCheckInterval == 0.5 && dataflow.node("a")?.healthCheckTimeout == 30)
        #expect(try Fixtures.load("nodes: [{id: a, path: /bin/true}]").healthCheckInterval == 5)
        #expect(
            Fixtures.diagnostics(
                """
                health_check_interval: 2
                nodes:
                  - id: a
                    path: /bin/true
                    health_check_timeout: soon
                """) == [
                    "1:1: health_check_interval has no effect: no node has a health_check_timeout",
                    "5:27: node 'a': key 'health_check_timeout': expected a number of seconds, found the string 'soon'",
                ])
    }

    @Test func waitModes() throws {
        let dataflow = try Fixtures.load(
            """
            nodes:
              - {id: a, path: /bin/true, wait: spin}
              - {id: b, path: /bin/true, wait: sleep}
              - {id: c, path: /bin/true, wait: adaptive}
              - {id: d, path: /bin/true}
            """)
        #expect(dataflow.node("a")?.wait == .spin && dataflow.node("b")?.wait == .sleep && dataflow.node("c")?.wait == .adaptive)
        #expect(dataflow.node("d")?.wait == nil)
        #expect(
            Fixtures.diagnostics(
                """
                nodes:
                  - {id: a, path: /bin/true, wait: busy}
                  - {id: b, path: /bin/true, wait: [spin]}
                """) == [
                    "2:36: node 'a': key 'wait': unknown value 'busy' (expected one of adaptive, spin, sleep)",
                    "3:36: node 'b': key 'wait': expected one of adaptive, spin, sleep, found a list",
                ])
    }

    @Test func exitWhenNodesFinish() throws {
        #expect(try Fixtures.load("nodes: [{id: a, path: /bin/true}]").exitWhenNodesFinish)
        #expect(try !Fixtures.load("exit_when_nodes_finish: false\nnodes: [{id: a, path: /bin/true}]").exitWhenNodesFinish)
        #expect(
            Fixtures.diagnostics("exit_when_nodes_finish: sometimes\nnodes: [{id: a, path: /bin/true}]") == [
                "1:25: key 'exit_when_nodes_finish': expected true or false, found the string 'sometimes'"
            ])
    }
}
