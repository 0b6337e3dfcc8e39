#pragma once
// NetNamespace: a network namespace joined to this host by a veth link, so a
// test can run a process as if on another host (it reaches this host's
// servers at host_ip()) and cut that host off the network with iptables
// DROP rules, as a partition would.
//
// Needs root, `ip` (iproute2) and `iptables`; Create() returns nullopt
// without them and the test skips. Not thread-safe: one thread uses an
// instance. The destructor deletes the namespace and its link.

#include <optional>
#include <string>
#include <vector>

namespace keel::testing {

class NetNamespace {
 public:
  // Namespace number `index` (0..63) of this test process: its link is a
  // /30 in 10.100.0.0/14 picked from the pid and the index, host side .1,
  // namespace side .2.
  static std::optional<NetNamespace> Create(int index);
  ~NetNamespace();
  NetNamespace(NetNamespace&& other) noexcept;
  NetNamespace& operator=(NetNamespace&&) = delete;
  NetNamespace(const NetNamespace&) = delete;

  const std::string& name() const { return name_; }
  const std::string& host_ip() const { return host_ip_; }  // this host, seen from inside
  const std::string& ns_ip() const { return ns_ip_; }

  // The program and arguments that run `program args...` inside the
  // namespace: "/usr/sbin/ip" {"netns", "exec", NAME, program, args...}.
  // `ip netns exec` execs the program, so the child's pid is the program's.
  std::string Program() const;
  std::vector<std::string> Args(const std::string& program,
                                const std::vector<std::string>& args) const;

  // Drops (true) or lets through again (false) every packet between the
  // namespace and this host. Established connections hang, as in a real
  // partition, rather than being reset.
  void Partition(bool cut);

 private:
  NetNamespace() = default;
  std::string name_;
  std::string host_link_;
  std::string host_ip_;
  std::string ns_ip_;
  bool cut_ = false;
};

}  // namespace keel::testing
