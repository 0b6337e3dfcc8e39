#include "tests/support/netns.h"

#include <unistd.h>

#include <cstdlib>
#include <stdexcept>

namespace keel::testing {
namespace {

const char kIp[] = "/usr/sbin/ip";
const char kIptables[] = "/usr/sbin/iptables";

// Runs a shell command line; throws naming it when it fails.
void Run(const std::string& command) {
  if (std::system((command + " >/dev/null 2>&1").c_str()) != 0) {
    throw std::runtime_error("failed: " + command);
  }
}

}  // namespace

std::optional<NetNamespace> NetNamespace::Create(int index) {
  if (geteuid() != 0 || access(kIp, X_OK) != 0 || access(kIptables, X_OK) != 0) {
    return std::nullopt;
  }
  const int tag = (static_cast<int>(getpid()) % 1000) * 64 + index % 64;
  NetNamespace ns;
  ns.name_ = "keel" + std::to_string(tag);
  ns.host_link_ = "kh" + std::to_string(tag);
  const std::string peer = "kn" + std::to_string(tag);
  // A /30 per tag in 10.100.0.0/14.
  const int v = (100 << 16) + tag * 4;
  const std::string prefix =
      "10." + std::to_string((v >> 16) & 255) + "." + std::to_string((v >> 8) & 255) + ".";
  ns.host_ip_ = prefix + std::to_string((v & 255) + 1);
  ns.ns_ip_ = prefix + std::to_string((v & 255) + 2);
  // A namespace left by a killed test of the same pid and index goes first.
  std::system((std::string(kIp) + " netns del " + ns.name_ + " >/dev/null 2>&1").c_str());
  std::system((std::string(kIp) + " link del " + ns.host_link_ + " >/dev/null 2>&1").c_str());
  Run(std::string(kIp) + " netns add " + ns.name_);
  Run(std::string(kIp) + " link add " + ns.host_link_ + " type veth peer name " + peer);
  Run(std::string(kIp) + " link set " + peer + " netns " + ns.name_);
  Run(std::string(kIp) + " addr add " + ns.host_ip_ + "/30 dev " + ns.host_link_);
  Run(std::string(kIp) + " link set " + ns.host_link_ + " up");
  const std::string in = std::string(kIp) + " netns exec " + ns.name_ + " " + kIp;
  Run(in + " addr add " + ns.ns_ip_ + "/30 dev " + peer);
  Run(in + " link set " + peer + " up");
  Run(in + " link set lo up");
  return ns;
}

NetNamespace::NetNamespace(NetNamespace&& other) noexcept
    : name_(std::move(other.name_)),
      host_link_(std::move(other.host_link_)),
      host_ip_(std::move(other.host_ip_)),
      ns_ip_(std::move(other.ns_ip_)),
      cut_(other.cut_) {
  other.name_.clear();
}

NetNamespace::~NetNamespace() {
  if (name_.empty()) return;
  std::system((std::string(kIp) + " link del " + host_link_ + " >/dev/null 2>&1").c_str());
  std::system((std::string(kIp) + " netns del " + name_ + " >/dev/null 2>&1").c_str());
}

std::string NetNamespace::Program() const { return kIp; }

std::vector<std::string> NetNamespace::Args(const std::string& program,
                                            const std::vector<std::string>& args) const {
  std::vector<std::string> out = {"netns", "exec", name_, program};
  out.insert(out.end(), args.begin(), args.end());
  return out;
}

void NetNamespace::Partition(bool cut) {
  if (cut == cut_) return;
  const std::string rule = std::string(kIp) + " netns exec " + name_ + " " + kIptables +
                           (cut ? " -I" : " -D");
  Run(rule + " OUTPUT -d " + host_ip_ + " -j DROP");
  Run(rule + " INPUT -s " + host_ip_ + " -j DROP");
  cut_ = cut;
}

}  // namespace keel::testing
