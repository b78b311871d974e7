// Must not compile: a sample sent twice (send takes it by rvalue, so an lvalue is refused).
#include <apus.hpp>

int main() {
    apus::Node node;
    auto sample = node.allocate<float>("out", 4);
    node.send(sample);
}
