# Two machines on one, for the benchmarks here (sourced): network namespaces "$tag-A" and
# "$tag-B" joined by a veth pair, 10.$1.0.1 and 10.$1.0.2. Set `tag` first, and call
# remove_machines when done. A and B run a command on either machine.
make_machines() {
    ip netns add "$tag-A" && ip netns add "$tag-B" || return 1
    ip link add "${tag}a" type veth peer name "${tag}b"
    ip link set "${tag}a" netns "$tag-A"
    ip link set "${tag}b" netns "$tag-B"
    ip -n "$tag-A" addr add "10.$1.0.1/24" dev "${tag}a"
    ip -n "$tag-B" addr add "10.$1.0.2/24" dev "${tag}b"
    for side in A B; do ip -n "$tag-$side" link set lo up; done
    ip -n "$tag-A" link set "${tag}a" up
    ip -n "$tag-B" link set "${tag}b" up
}
remove_machines() {
    ip netns del "$tag-A" 2>/dev/null
    ip netns del "$tag-B" 2>/dev/null
}
# Each machine runs on a CPU of its own (A on CPU 0, B on CPU 1), as two real machines do; PIN=0
# lets both share every CPU, so that one machine's process may run on the other's CPU.
if [ "${PIN:-1}" = 1 ]; then
    A() { ip netns exec "$tag-A" taskset -c 0 "$@"; }
    B() { ip netns exec "$tag-B" taskset -c 1 "$@"; }
else
    A() { ip netns exec "$tag-A" "$@"; }
    B() { ip netns exec "$tag-B" "$@"; }
fi
