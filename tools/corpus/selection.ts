/**
 * The part of the real-fix corpus (test/corpus/) that runs in the test command
 * (tools/corpus/corpus.test.ts): a fixed list of corpus files, each with what `tsplice create`
 * must make of it (refused with a class, or an update with these functions and features) and,
 * for the updates, that every step of the corpus run in the guest passes (tools/corpus/guest.ts).
 * Chosen to cover the failure modes the full corpus run met; each pre object is compiled once
 * in a cold tree (a few seconds each), so the list stays short.
 */
import type { UpdatePackage } from '../../src/update/format.js';

/** What the update must hold, checked on the host before the guest runs it. */
export interface UpdateExpectation {
  /** Exactly the functions it replaces (changed ones, `.cold`/`.isra.N` parts included). */
  functions: string[];
  /** Static locals of the running kernel (`name.N`, writable) the new code shares, by the name before `.N`. */
  staticLocals?: string[];
  /** Constants the compiler numbered (`__msg.N`, `__func__.N`), copied into the update's module. */
  constants?: string[];
  /** String literals the update compares (pre code) or carries (post code), by contents. */
  literals?: string[];
  /** Special sections with entries for the new code (jump labels, static calls, alternatives). */
  special?: string[];
  /** Local symbols of the running kernel the new code refers to, by full name (clones: `.constprop.0`). */
  refersTo?: string[];
  /** Statics carried as private copies (src/diff/private-copies.ts), by name. */
  copies?: string[];
  /** Changed read-only tables carried as the update's own copy (src/diff/read-only-copies.ts), by name. */
  dataCopies?: string[];
  /** The author's hooks (<linux/tsplice.h>), as `kind function`. */
  hooks?: string[];
  /** The shadow ids the new code uses. */
  shadowIds?: string[];
}

export interface SelectedFile {
  /** The corpus file (test/corpus/manifest.json `files[].file`). */
  file: string;
  /** Why it is in the selection: the feature or failure mode it covers. */
  why: string;
  /** Other corpus files whose diffs go in the same update (one fix across files, src/release/group.ts). */
  groupWith?: string[];
  /** The create refusal's class (tools/corpus/outcome.ts createClasses: its only one)... */
  refused?: string;
  /** ...and what the refusal message must say (the symbol at fault and why). */
  names?: string;
  /** Or the update create must make; the guest then applies it, checks it, and undoes it. */
  update?: UpdateExpectation;
  /** A module fix whose late path the guest runs too: applied unloaded, modprobe, rmmod, modprobe, undo. */
  late?: boolean;
  /**
   * For a fix refused because it needs new code: the update its adapted patch
   * (test/corpus/adapted/, tools/corpus/adapted.ts) must make; the guest applies it, checks it,
   * and undoes it.
   */
  adapted?: UpdateExpectation;
}

export const SELECTION: SelectedFile[] = [
  // Refused at create, with the exact class.
  {
    file: 'fs/eventpoll.c',
    why: 'layout change: struct eventpoll gains an rcu_head (DWARF compare); adapted, the one-argument kfree_rcu needs no member',
    refused: 'layout change',
    names: 'struct eventpoll (.debug_info): data layout change',
    adapted: { functions: ['ep_free'] },
  },
  {
    file: 'kernel/exit.c',
    why: 'layout change: task_struct gains user_dumpable; adapted, the flag is shadow data of the task, freed with it and by a reverse hook',
    refused: 'layout change',
    names: 'struct task_struct (.debug_info): data layout change',
    adapted: { functions: ['do_exit', 'make_task_dead', 'make_task_dead.cold', 'release_task'], hooks: ['reverse user_dumpable_reverse'], shadowIds: ['0x7573725f64756d70'] },
  },
  {
    file: 'sound/soc/sof/intel/hda-ipc.c',
    why: 'a module fix reaching its changed sof-priv.h through <trace/events/sof_intel.h> (an include-root header with a ../ include): compiled in the copy, a layout change of an ops table',
    refused: 'layout change',
    names: 'struct snd_sof_dsp_ops (.debug_info): data layout change',
  },
  {
    file: 'kernel/params.c',
    why: '__init function: param_sysfs_init changes, freed after boot; adapted, declared handled: applied as a record with nothing to switch',
    refused: '__init code or data',
    names: 'param_sysfs_init (.init.text): changed __init function',
    adapted: { functions: [] },
  },
  { file: 'drivers/input/keyboard/atkbd.c', why: '__initdata: the DMI quirk table changes, freed after boot', refused: '__init code or data', names: 'atkbd_dmi_quirk_table (.init.rodata): changed __initdata' },
  {
    file: 'net/netlabel/netlabel_unlabeled.c',
    why: 'changed initializer of existing data: a netlink policy table that running code reads; adapted, the check moves into the one reader',
    refused: 'changed initializer',
    names: 'netlbl_unlabel_genl_policy (.rodata.netlbl_unlabel_genl_policy): changed initial value',
    adapted: { functions: ['netlbl_unlabel_addrinfo_get'] },
  },
  {
    file: 'kernel/bpf/bpf_lsm.c',
    why: 'a changed BTF set the kernel keeps its own copy of; adapted, pre_apply and check_apply hooks find the BTF id the new code refuses',
    refused: 'changed table',
    names: '.BTF_ids (.BTF_ids): changed table',
    adapted: {
      functions: ['bpf_ima_inode_hash_allowed', 'bpf_lsm_is_sleepable_hook'],
      hooks: ['pre_apply bpf_lsm_task_to_inode_pre_apply', 'check_apply bpf_lsm_task_to_inode_check_apply'],
    },
  },
  { file: 'net/ipv4/tcp_recovery.c', why: 'no code change: only line numbers move', refused: 'no code change', names: 'changes no code' },
  { file: 'drivers/iommu/intel/iommu.c', why: 'a PCI quirk added to .pci_fixup_header: no function changes, but a table the running kernel keeps its own copy of does; was "no code change"', refused: 'changed table', names: '.pci_fixup_header (.pci_fixup_header): changed table (size 688 -> 704)' },
  // Created, applied, checked and undone in the guest.
  {
    file: 'kernel/audit.c',
    why: 'the audit demo fix (AUDIT_TRIM while audit is locked); many strings, calls a .constprop clone',
    update: { functions: ['audit_receive_msg'], literals: [' op=trim res=1'], refersTo: ['audit_send_reply.constprop.0'] },
  },
  {
    file: 'drivers/base/devres.c',
    why: 'a new string literal (.LC label) carried in the update; jump label and static call entries',
    update: { functions: ['devm_krealloc'], literals: ['devm_krealloc_release'], special: ['__jump_table', '.static_call_sites'] },
  },
  {
    file: 'fs/userfaultfd.c',
    why: 'jump labels (6), static calls (10) and lock prefixes in one function; was an unresolved .LC0 reference',
    update: { functions: ['userfaultfd_ioctl'], special: ['__jump_table', '.static_call_sites', '.smp_locks'], refersTo: ['__wake_userfault'] },
  },
  {
    file: 'net/ipv4/raw.c',
    why: 'was "match failed": the pre code refers to a .LC string literal, now compared by contents; WARN_ONCE static local, __func__',
    update: {
      functions: ['raw_sendmsg', 'raw_sendmsg.cold'],
      literals: ['\u00016%s: %s forgot to set AF_INET. Fix it!\n'],
      staticLocals: ['__already_done'],
      constants: ['__func__'],
      special: ['__jump_table'],
    },
  },
  {
    file: 'io_uring/poll.c',
    why: 'seven functions in one update: .cold and .isra.0 parts, one in .text.unlikely, calls a .constprop.0.isra.0 clone',
    update: {
      functions: ['__io_arm_poll_handler', '__io_poll_cancel.isra.0', 'io_poll_check_events', 'io_poll_disarm', 'io_poll_remove_all_table', 'io_poll_wake', 'io_poll_wake.cold'],
      refersTo: ['io_poll_find.constprop.0.isra.0'],
    },
  },
  {
    file: 'kernel/trace/trace_events_hist.c',
    why: 'a static local buffer (full_name) the new code shares with the running kernel, and a new format string',
    update: { functions: ['hist_field_name'], staticLocals: ['full_name'], literals: ['%s.%s.%s'] },
  },
  {
    file: 'net/ethtool/bitset.c',
    why: 'seven netlink __msg.N error strings referred to by the new code, copied by contents',
    update: { functions: ['ethnl_compact_sanity_checks'], constants: ['__msg'] },
  },
  {
    file: 'net/ipv4/nexthop.c',
    why: 'was refused as a changed initializer (__msg.N strings change); now copied; a WARN_ONCE static local',
    update: { functions: ['rtm_new_nexthop'], constants: ['__msg'], staticLocals: ['__already_done'] },
  },
  {
    file: 'drivers/char/tpm/tpm_tis_core.c',
    why: 'was refused for renumbered __dyndbg descriptors (moved lines); the descriptors are now paired by message',
    update: { functions: ['tpm_tis_send_data', 'tpm_tis_send_data.cold'], literals: ['Unable to read burstcount\n'] },
  },
  {
    file: 'io_uring/timeout.c',
    why: 'alternatives (.altinstructions) in the new code; was an unresolved .LC reference',
    update: { functions: ['__io_timeout_prep', 'io_timeout_remove_prep'], special: ['.altinstructions'] },
  },
  {
    file: 'drivers/thermal/thermal_core.c',
    why: 'four functions with a .cold part, a lockdep __key static local, __func__ strings, retpoline sites',
    update: {
      functions: ['thermal_release', 'thermal_zone_device_register_with_trips', 'thermal_zone_device_register_with_trips.cold', 'thermal_zone_device_unregister'],
      staticLocals: ['__key'],
      constants: ['__func__'],
      special: ['.retpoline_sites'],
    },
  },
  {
    file: 'fs/binfmt_elf.c',
    why: 'a static of two units (compat_binfmt_elf.c #includes binfmt_elf.c): elf_core_dump and its static notesize are matched per unit, and each copy of the new code has a name of its own in the module; was "match failed"',
    update: { functions: ['elf_core_dump', 'elf_core_dump'], refersTo: ['notesize'] },
  },
  {
    file: 'mm/hugetlb.c',
    groupWith: ['mm/gup.c', 'mm/memory-failure.c', 'mm/memory_hotplug.c', 'mm/mempolicy.c', 'mm/migrate.c'],
    why: 'one fix across six units (include/linux/hugetlb.h renames isolate_hugetlb); statics of one name in several units matched per unit; private copies of set_pte (a header static inline the running kernel has 5 times) and __free_raw_hwp_pages; was "match failed", then "ambiguous static"',
    update: {
      functions: [
        '__gup_longterm_locked', '__unmap_hugepage_range', 'do_migrate_range.isra.0', 'do_migrate_range.isra.0.cold', 'huge_pmd_unshare', 'hugetlb_change_protection',
        'hugetlb_fault', 'hugetlb_fault.cold', 'hugetlb_unshare_pmds', 'kernel_move_pages', 'memory_failure', 'memory_failure.cold', 'migrate_pages',
        'move_hugetlb_page_tables', 'move_hugetlb_state', 'putback_movable_pages', 'queue_pages_hugetlb', 'soft_offline_page', 'soft_offline_page.cold',
      ],
      copies: ['__free_raw_hwp_pages', 'set_pte'],
    },
  },
  {
    file: 'net/core/neighbour.c',
    why: 'was "match failed" on cs-prefixed retpoline calls (2e e8 to __x86_indirect_thunk_*); seven functions, .cold, calls .constprop/.isra clones',
    update: {
      functions: ['neigh_dump_info', 'neigh_table_clear', 'neigh_table_clear.cold', 'neigh_table_init', 'neigh_xmit', 'neightbl_dump_info', 'neightbl_set'],
      constants: ['__msg'],
      special: ['.retpoline_sites'],
      refersTo: ['neightbl_fill_info.constprop.0', '__neigh_ifdown.isra.0'],
    },
  },
  // Fixes to loadable modules: the guest driver loads the module with modprobe first, and the
  // functions are matched and switched in the module's text.
  { file: 'net/netfilter/xt_cpu.c', why: 'module xt_cpu: smp_processor_id() becomes raw_smp_processor_id(), the same code without CONFIG_DEBUG_PREEMPT', refused: 'no code change', names: 'changes no code' },
  {
    file: 'fs/ext4/xattr.c',
    why: 'module ext4: eleven functions of one unit in one update, in a module the lab guest loads with its dependencies (jbd2, mbcache)',
    update: {
      functions: [
        'ext4_expand_extra_isize_ea', 'ext4_xattr_block_find', 'ext4_xattr_block_set', 'ext4_xattr_delete_inode', 'ext4_xattr_get_block', 'ext4_xattr_ibody_set',
        'ext4_xattr_inode_dec_ref_all', 'ext4_xattr_inode_lookup_create', 'ext4_xattr_release_block', 'ext4_xattr_set', 'ext4_xattr_set_entry',
      ],
    },
  },
  { file: 'fs/fuse/readdir.c', why: 'module fuse: one function', late: true, update: { functions: ['fuse_emit'] } },
  { file: 'fs/isofs/rock.c', why: 'module isofs: a .cold part and a new message string carried in the update', late: true, update: { functions: ['rock_continue', 'rock_continue.cold'] } },
  { file: 'fs/udf/misc.c', why: 'module udf (with crc-itu-t): a new message string; a pr_debug whose jump label entry names udf\'s descriptor binds at insmod and keeps udf loaded', update: { functions: ['udf_read_tagged'] } },
  { file: 'net/netfilter/nf_conntrack_proto_tcp.c', why: 'module nf_conntrack: a .cold part; the new code calls into nf_conntrack and vmlinux; a pr_debug jump label entry pins nf_conntrack', update: { functions: ['nf_conntrack_tcp_packet', 'nf_conntrack_tcp_packet.cold'] } },
  { file: 'net/netfilter/nft_bitwise.c', why: 'nft_bitwise.o is part of the module nf_tables: the unit is not the module', update: { functions: ['nft_bitwise_init'] } },
  { file: 'net/netfilter/nft_ct.c', why: 'module nft_ct: its new code calls nf_ct_expect_put, an export of nf_conntrack it depends on', late: true, update: { functions: ['nft_ct_expect_obj_eval'] } },
  { file: 'net/netfilter/nft_dynset.c', why: 'module nf_tables with a header hunk of include/net/netfilter/nf_tables.h grouped into its patch', update: { functions: ['nft_dynset_new'] } },
  { file: 'net/netfilter/nft_set_hash.c', why: 'module nf_tables: four functions, statics of the module named by the new code', update: { functions: ['nft_hash_activate', 'nft_hash_walk', 'nft_rhash_activate', 'nft_rhash_walk'] } },
  { file: 'net/netfilter/xt_multiport.c', why: 'module xt_multiport: a new function the two changed ones call, carried in the update', late: true, update: { functions: ['multiport_mt6_check', 'multiport_mt_check'] } },
  { file: 'net/sched/act_csum.c', why: 'module act_csum: a traffic-control action', late: true, update: { functions: ['tcf_csum_act'] } },
  { file: 'net/sched/sch_choke.c', why: 'module sch_choke: a queueing discipline, two functions', late: true, update: { functions: ['choke_dump_stats', 'choke_enqueue'] } },
  {
    file: 'drivers/net/vxlan/vxlan_core.c',
    why: 'module vxlan: the new code calls jhash, which vxlan has out of line in several units; bound at each load as jhash#N, the copy matching found; was "has it more than once"',
    late: true,
    update: { functions: ['vxlan_xmit_one'], refersTo: ['jhash'] },
  },
  {
    file: 'drivers/usb/core/quirks.c',
    why: 'module usbcore: a row added to the constant usb_quirk_list, carried as the update\'s own copy with the function that reads it; was "changed initializer"',
    update: { functions: ['usb_detect_quirks'], dataCopies: ['usb_quirk_list'] },
  },
  {
    file: 'sound/pci/hda/patch_hdmi.c',
    why: 'module snd-hda-codec-hdmi: a row added to the constant force_connect_list, carried as a copy; a .cold part',
    late: true,
    update: { functions: ['hdmi_parse_codec', 'hdmi_parse_codec.cold'], dataCopies: ['force_connect_list'] },
  },
  {
    file: 'drivers/gpu/drm/virtio/virtgpu_plane.c',
    groupWith: ['drivers/gpu/drm/virtio/virtgpu_gem.c'],
    why: 'module virtio-gpu: one fix across two files, the new code calls virtio_gpu_lock_one_resv_uninterruptible, which virtgpu_gem.c adds; was "unresolved reference" and "only adds functions"',
    late: true,
    update: { functions: ['virtio_gpu_cursor_plane_update', 'virtio_gpu_primary_plane_update'] },
  },
  {
    file: 'drivers/gpu/drm/amd/display/dc/bios/bios_parser2.c',
    why: 'module amdgpu: a display unit only amdgpu\'s Makefile names (../display/…), built through that folder; bios_parser_get_gpio_pin_info, which amdgpu has twice, bound as #2 at each load; was "not derived", then "wrong-symbol"',
    late: true,
    update: {
      functions: [
        'bios_parser_get_device_tag', 'bios_parser_get_encoder_cap_info', 'bios_parser_get_gpio_pin_info', 'bios_parser_get_lttpr_caps', 'bios_parser_get_lttpr_interop',
        'bios_parser_get_spread_spectrum_info', 'device_type_from_device_id', 'firmware_parser_create', 'get_gpio_i2c_info',
      ],
    },
  },
  { file: 'virt/kvm/dirty_ring.c', why: 'module kvm: a unit only arch/x86/kvm\'s Makefile names ($(KVM)/dirty_ring.o), built through that folder with kvm\'s flags', update: { functions: ['kvm_reset_dirty_gfn'] } },
  {
    file: 'net/sched/sch_taprio.c',
    why: 'module sch_taprio: members renamed in place (close_time -> end_time, same offset and type), no layout change; was "layout change"',
    late: true,
    update: { functions: ['advance_sched', 'taprio_dequeue'] },
  },
];

/** What an update holds, in the words of UpdateExpectation. */
export interface UpdateFacts {
  functions: string[];
  staticLocals: string[];
  constants: string[];
  literals: string[];
  special: string[];
  refersTo: string[];
  copies: string[];
  dataCopies: string[];
  hooks: string[];
  shadowIds: string[];
}

export function updateFacts(update: UpdatePackage): UpdateFacts {
  const replaced = update.functions.filter((f) => f.status === 'changed').map((f) => f.name);
  const owners = new Set(update.functions.map((f) => f.name));
  const literals = new Set<string>();
  const pieces = new Set<string>();
  for (const f of update.functions) {
    for (const r of [...(f.pre?.relocations ?? []), ...f.post.relocations]) {
      if (r.target.kind === 'string') literals.add(r.target.text);
    }
    for (const r of f.post.relocations) if (r.target.kind === 'piece') pieces.add(r.target.name);
  }
  for (const d of update.data) if (/^".*"$/s.test(d.name)) literals.add(d.name.slice(1, -1));
  // A static local of the running kernel is resolved by its local name (`full_name.7`).
  const externals = update.module?.externals ?? [];
  const numbered = (name: string): boolean => /\.\d+$/.test(name) && !/\.(cold|isra|constprop|part|lto_priv)\.\d+$/.test(name) && !owners.has(name);
  const staticLocals = externals.filter((e) => e.local && numbered(e.name));
  // A numbered piece of the new code that apply does not resolve is carried in the module.
  const resolved = new Set(externals.map((e) => e.name));
  const constants = [...pieces].filter((name) => numbered(name) && !resolved.has(name));
  return {
    functions: [...replaced].sort(),
    staticLocals: [...new Set(staticLocals.map((e) => e.name.replace(/\.\d+$/, '')))].sort(),
    constants: [...new Set(constants.map((name) => name.replace(/\.\d+$/, '')))].sort(),
    literals: [...literals].sort(),
    special: [...new Set(update.specialEntries.filter((s) => s.side === 'post' && owners.has(s.owner)).map((s) => s.section))].sort(),
    refersTo: [...new Set(externals.filter((e) => e.local).map((e) => e.name))].sort(),
    copies: update.functions.filter((f) => f.status === 'copy').map((f) => f.name).sort(),
    dataCopies: update.data.filter((d) => d.status === 'copy').map((d) => d.name).sort(),
    hooks: (update.hooks ?? []).map((h) => `${h.kind} ${h.function}`),
    shadowIds: [...new Set((update.shadowIds ?? []).map((u) => u.id))].sort(),
  };
}

/** The ways an update falls short of its expectation (empty when it meets it). */
export function expectationProblems(facts: UpdateFacts, expected: UpdateExpectation): string[] {
  const problems: string[] = [];
  const missing = (what: string, want: string[] | undefined, have: string[]): void => {
    const absent = (want ?? []).filter((w) => !have.includes(w));
    if (absent.length > 0) problems.push(`no ${what} ${absent.join(', ')} (it has ${have.join(', ') || 'none'})`);
  };
  if (JSON.stringify([...expected.functions].sort()) !== JSON.stringify(facts.functions)) {
    problems.push(`replaces ${facts.functions.join(', ') || 'no function'}, expected ${[...expected.functions].sort().join(', ')}`);
  }
  missing('static local', expected.staticLocals, facts.staticLocals);
  missing('copied constant', expected.constants, facts.constants);
  missing('string literal', expected.literals, facts.literals);
  missing('special section entries in', expected.special, facts.special);
  missing('reference to the local symbol', expected.refersTo, facts.refersTo);
  missing('private copy of', expected.copies, facts.copies);
  missing('copy of the changed table', expected.dataCopies, facts.dataCopies);
  missing('hook', expected.hooks, facts.hooks);
  missing('shadow id', expected.shadowIds, facts.shadowIds);
  return problems;
}
