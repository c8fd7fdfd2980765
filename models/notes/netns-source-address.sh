#!/usr/bin/env bash
# Two "nodes" (netns n0, n1) on an underlay bridge; n0 has cbr0 with pod p0;
# an external client ns "ext". NodePort 30007 on n0 DNATs to p0:8080 with
# MASQUERADE (kube-proxy's KUBE-MARK-MASQ + KUBE-POSTROUTING). Who does p0 see?
set -eu
cleanup() { for n in ext n0 p0 n1 p1; do ip netns del $n 2>/dev/null || true; done; }
cleanup
for n in ext n0 p0 n1 p1; do ip netns add $n; ip -n $n link set lo up; done
# underlay: ext <-> n0 and n0 <-> n1 via a bridge in ext's ns (acting as switch)
ip -n ext link add sw type bridge; ip -n ext link set sw up
ip -n ext addr add 198.18.0.1/16 dev sw
ip -n ext addr add 192.168.0.254/16 dev sw
for i in 0 1; do
  ip link add e$i netns n$i type veth peer name u$i netns ext
  ip -n ext link set u$i master sw up
  ip -n n$i addr add 192.168.0.$((i+1))/16 dev e$i; ip -n n$i link set e$i up
  ip -n n$i route add 198.18.0.0/16 dev e$i
  ip -n n$i link add cbr0 type bridge; ip -n n$i addr add 10.244.$i.1/24 dev cbr0; ip -n n$i link set cbr0 up
  ip link add v$i netns n$i type veth peer name eth0 netns p$i
  ip -n n$i link set v$i master cbr0 up
  ip -n p$i addr add 10.244.$i.2/24 dev eth0; ip -n p$i link set eth0 up; ip -n p$i route add default via 10.244.$i.1
  ip netns exec n$i sysctl -qw net.ipv4.ip_forward=1
done
ip -n n0 route add 10.244.1.0/24 via 192.168.0.2; ip -n n1 route add 10.244.0.0/24 via 192.168.0.1
ip -n ext route add 10.244.0.0/16 via 192.168.0.1 || true
# servers in p0 and p1 print the peer address of each connection
for i in 0 1; do
  ip netns exec p$i python3 -c "
import socket
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR,1); s.bind(('0.0.0.0',8080)); s.listen()
while True:
    c,a=s.accept(); c.sendall((a[0]+'\n').encode()); c.close()" &
done
sleep 0.5
ask() { ip netns exec ext python3 -c "
import socket
s=socket.create_connection(('$1',30007),timeout=2); print(s.recv(100).decode().strip())"; }
# kube-proxy-like rules on n0: NodePort 30007 -> endpoint $1, masquerade marked traffic
rules() {
  ip netns exec n0 iptables -t nat -F
  ip netns exec n0 iptables -t nat -A PREROUTING -p tcp --dport 30007 -j MARK --set-xmark 0x4000/0x4000
  ip netns exec n0 iptables -t nat -A PREROUTING -p tcp --dport 30007 -j DNAT --to-destination $1:8080
  ip netns exec n0 iptables -t nat -A POSTROUTING -m mark --mark 0x4000/0x4000 -j MASQUERADE
}
rules 10.244.0.2; echo "local endpoint (p0 on n0) sees: $(ask 192.168.0.1)"
rules 10.244.1.2; echo "remote endpoint (p1 on n1) sees: $(ask 192.168.0.1)"
ip netns exec n0 iptables -t nat -F
echo "pod-to-pod p0 -> p1 (no NAT) sees: $(ip netns exec p0 python3 -c "
import socket
s=socket.create_connection(('10.244.1.2',8080),timeout=2); print(s.recv(100).decode().strip())")"
# A pod reaching its own IP (and 127.0.0.1): through lo either way, but the
# route to a local address prefers that address as the source.
for dst in 10.244.0.2 127.0.0.1; do
  echo "pod p0 -> $( [ $dst = 127.0.0.1 ] && echo 127.0.0.1 || echo "its own IP $dst") sees: $(ip netns exec p0 python3 -c "
import socket
s=socket.create_connection(('$dst',8080),timeout=2); print(s.recv(100).decode().strip())")"
done
kill %1 %2 2>/dev/null || true
cleanup
