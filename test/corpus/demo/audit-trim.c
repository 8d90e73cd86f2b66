/* Locks audit (AUDIT_SET enabled=2), then asks for AUDIT_TRIM; prints the kernel's answer. */
#include <errno.h>
#include <linux/audit.h>
#include <linux/netlink.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int request(int fd, int type, const void *data, int len)
{
	char buf[8192];
	struct { struct nlmsghdr h; char body[512]; } m = { 0 };
	static int seq;
	m.h.nlmsg_len = NLMSG_LENGTH(len);
	m.h.nlmsg_type = type;
	m.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	m.h.nlmsg_seq = ++seq;
	memcpy(m.body, data, len);
	struct sockaddr_nl to = { .nl_family = AF_NETLINK };
	if (sendto(fd, &m, m.h.nlmsg_len, 0, (struct sockaddr *)&to, sizeof(to)) < 0) return -errno;
	for (;;) {
		int n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0) return -errno;
		for (struct nlmsghdr *h = (void *)buf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n))
			if (h->nlmsg_type == NLMSG_ERROR && h->nlmsg_seq == (unsigned)seq) return ((struct nlmsgerr *)NLMSG_DATA(h))->error;
	}
}

int main(int argc, char **argv)
{
	int fd = socket(AF_NETLINK, SOCK_RAW, NETLINK_AUDIT);
	if (fd < 0) { printf("socket: %s\n", strerror(errno)); return 1; }
	if (argc > 1 && !strcmp(argv[1], "lock")) {
		struct audit_status s = { .mask = AUDIT_STATUS_ENABLED, .enabled = 2 };
		int r = request(fd, AUDIT_SET, &s, sizeof(s));
		printf("AUDIT_SET enabled=2 (lock): %s\n", r ? strerror(-r) : "ok");
	}
	int r = request(fd, AUDIT_TRIM, "", 0);
	printf("AUDIT_TRIM with audit locked: %s\n", r ? strerror(-r) : "ok");
	return 0;
}
