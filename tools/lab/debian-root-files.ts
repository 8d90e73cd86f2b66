/**
 * What the lab adds to the Debian guest's root file system, as file texts: the command channel
 * (a unit that runs, at each boot, the script the host shares for that boot number), the
 * generator that mounts the host's folders named on the kernel command line, and the
 * initramfs hook that keeps the disk and share drivers in Debian's own initrd.
 *
 * The kernel command line is the only per-run input the disk sees: the image is cached and
 * booted from throwaway copies, so nothing about a run can be baked into it.
 *   tsplice.share=TAG:PATH   a host folder QEMU shares with 9p tag TAG, mounted at PATH
 *   tsplice.control=TAG      the run's control folder (scripts, env), mounted at CONTROL_DIR;
 *                            without it the unit does not start (the interactive shell)
 */

/** Where the control share is mounted in the guest. */
export const CONTROL_DIR = '/run/tsplice-lab';

/** The console line prefix of the boot markers, followed by the run's nonce. */
export const BOOT_MARKER = 'TSPLICE-BOOT-';

/** Modules the guest needs before and just after the root is mounted. */
const EARLY_MODULES = ['virtio_pci', 'virtio_blk', 'ext4'];
const SHARE_MODULES = ['9pnet_virtio', '9p'];

/** 9p mount options, as the initramfs guest uses them (no client cache: the host writes too). */
const NINEP_OPTIONS = 'trans=virtio,version=9p2000.L,msize=512000,cache=none';

/**
 * An initramfs-tools hook (a file no package owns, unlike /etc/initramfs-tools/modules, whose
 * edit before the package is installed would stop dpkg at a conffile question): whatever
 * MODULES= says, the initrd holds the drivers to find /dev/vda and mount the shares.
 */
const INITRAMFS_HOOK = `#!/bin/sh
# tsplice lab: the disk and 9p share drivers in every initrd, whatever MODULES= picks.
[ "$1" = prereqs ] && exit 0
. /usr/share/initramfs-tools/hook-functions
manual_add_modules ${[...EARLY_MODULES, ...SHARE_MODULES].join(' ')}
`;

/**
 * A systemd generator: mount units for the folders on the kernel command line, and in a run
 * (not the interactive shell) the serial getty masked, so the console carries only the run.
 * A generator rather than fstab because the shares change with each run and the disk does not.
 */
const SHARES_GENERATOR = `#!/bin/sh
# tsplice lab: mount units for tsplice.share=TAG:PATH and tsplice.control=TAG (kernel command line).
normal=$1 early=$2
mount_unit() { # tag path
  unit=$(systemd-escape --path --suffix=mount "$2")
  cat > "$normal/$unit" <<EOF
[Unit]
Description=tsplice lab: host folder $2
DefaultDependencies=no
After=systemd-modules-load.service
Before=local-fs.target umount.target
Conflicts=umount.target
[Mount]
What=$1
Where=$2
Type=9p
Options=${NINEP_OPTIONS}
EOF
  mkdir -p "$normal/local-fs.target.wants"
  ln -sf "../$unit" "$normal/local-fs.target.wants/$unit"
}
for word in $(cat /proc/cmdline); do
  case "$word" in
    tsplice.share=*:*) spec=\${word#tsplice.share=}; mount_unit "\${spec%%:*}" "\${spec#*:}" ;;
    tsplice.control=*)
      mount_unit "\${word#tsplice.control=}" ${CONTROL_DIR}
      ln -sf /dev/null "$early/serial-getty@ttyS0.service" ;;
  esac
done
exit 0
`;

/**
 * Runs at each boot with a control share. The boot number is counted on the disk, so it
 * survives a reset: a boot killed by sysrq-b or a panic still moves the count on, and the next
 * boot runs the next script. The count is synced before the script runs for that reason.
 */
const BOOT_SCRIPT = `#!/bin/sh
# tsplice lab: run this boot's script from the host, framed by markers, then reboot or power off.
control=${CONTROL_DIR}
state=/var/lib/tsplice-lab
mkdir -p "$state"
n=$(( $(cat "$state/boots" 2>/dev/null || echo 0) + 1 ))
echo "$n" > "$state/boots"
sync
. "$control/env"
export HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin TSPLICE_BOOT=$n
if [ -f "$control/boot-$n.sh" ]; then
  echo "${BOOT_MARKER}$TSPLICE_NONCE:$n:start"
  (cd "$TSPLICE_CWD" && sh "$control/boot-$n.sh" </dev/null 2>&1)
  status=$?
  sync
  echo "${BOOT_MARKER}$TSPLICE_NONCE:$n:end:$status"
fi
if [ -f "$control/boot-$((n + 1)).sh" ]; then systemctl reboot; else systemctl poweroff; fi
`;

/**
 * After multi-user.target, so a script sees the system as a user would. Output goes to
 * /dev/console: the kernel spares a file opened through it when a getty hangs up ttyS0.
 */
const LAB_UNIT = `[Unit]
Description=tsplice lab: this boot's script from the host
After=multi-user.target
ConditionKernelCommandLine=tsplice.control
RequiresMountsFor=${CONTROL_DIR}

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/tsplice-lab-boot
StandardInput=null
StandardOutput=tty
StandardError=tty
TTYPath=/dev/console

[Install]
WantedBy=multi-user.target
`;

/** The interactive shell (`lab shell --debian`): root on the serial console, no password. */
const AUTOLOGIN = `[Service]
ExecStart=
ExecStart=-/sbin/agetty --autologin root --keep-baud 115200,57600,38400,9600 %I $TERM
`;

/** Files synced into the root before the packages are installed, by path; mode 0755 for scripts. */
export const ROOT_FILES: ReadonlyArray<{ path: string; text: string; mode: number }> = [
  { path: '/etc/initramfs-tools/hooks/tsplice-lab', text: INITRAMFS_HOOK, mode: 0o755 },
  { path: '/etc/modules-load.d/tsplice-lab.conf', text: `${SHARE_MODULES.join('\n')}\n`, mode: 0o644 },
  { path: '/etc/systemd/system-generators/tsplice-lab-shares', text: SHARES_GENERATOR, mode: 0o755 },
  { path: '/usr/local/sbin/tsplice-lab-boot', text: BOOT_SCRIPT, mode: 0o755 },
  { path: '/etc/systemd/system/tsplice-lab.service', text: LAB_UNIT, mode: 0o644 },
  { path: '/etc/systemd/system/serial-getty@ttyS0.service.d/autologin.conf', text: AUTOLOGIN, mode: 0o644 },
];

/**
 * Commands run in the finished root (chroot), after every package is installed; fstab and
 * hostname here because mmdebstrap writes its own versions of both during the build.
 */
export const CUSTOMIZE_COMMANDS: readonly string[] = [
  "echo '/dev/vda / ext4 rw,errors=remount-ro 0 1' > /etc/fstab",
  'echo tsplice-lab > /etc/hostname',
  'systemctl enable tsplice-lab.service',
  // A lab: root logs in on the console without a password.
  'passwd -d root',
];
