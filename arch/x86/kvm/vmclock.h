/* SPDX-License-Identifier: GPL-2.0 */
/*
 * KVM vmclock: a vmclock structure in guest memory kept consistent with
 * the guest's view of the TSC.
 */

#ifndef __ARCH_X86_KVM_VMCLOCK_H__
#define __ARCH_X86_KVM_VMCLOCK_H__

#include <linux/kvm_host.h>

#ifdef CONFIG_KVM_VMCLOCK
void kvm_vmclock_init_vm(struct kvm *kvm);
void kvm_vmclock_pre_destroy_vm(struct kvm *kvm);
void kvm_vmclock_destroy_vm(struct kvm *kvm);
int kvm_vm_ioctl_set_vmclock(struct kvm *kvm, void __user *argp);
int kvm_vm_ioctl_get_vmclock(struct kvm *kvm, void __user *argp);
int kvm_vm_ioctl_set_vmclock_host(struct kvm *kvm, void __user *argp);
int kvm_vm_ioctl_vmclock_disruption(struct kvm *kvm, void __user *argp);
u32 kvm_vmclock_caps(struct kvm *kvm);
void kvm_vmclock_update(struct kvm_vcpu *vcpu);
void kvm_vmclock_memslots_updated(struct kvm *kvm);
void kvm_vmclock_exit(void);
bool kvm_vmclock_auto_stale(struct kvm_vcpu *vcpu);

/*
 * The guest TSC of @vcpu, or something else the vmclock's validity depends
 * on, changed: republish it before @vcpu enters the guest again.  Callers
 * may hold tsc_write_lock, so only set the request, no IPI; the changes
 * happen outside guest mode.
 */
static inline void kvm_vmclock_vcpu_tsc_changed(struct kvm_vcpu *vcpu)
{
	if (READ_ONCE(vcpu->kvm->arch.vmclock.mode)) {
		atomic64_inc(&vcpu->kvm->arch.vmclock.update_req);
		kvm_make_request(KVM_REQ_VMCLOCK_UPDATE, vcpu);
	}
}

DECLARE_STATIC_KEY_FALSE(kvm_vmclock_auto_key);

/*
 * The last check before each guest entry, with @vcpu in IN_GUEST_MODE:
 * whether an AUTO vmclock is older than the host clock line, in which case
 * an update is requested and the entry must be cancelled.  A NOP unless
 * some VM has an AUTO vmclock.
 */
static __always_inline bool kvm_vmclock_entry_stale(struct kvm_vcpu *vcpu)
{
	return static_branch_unlikely(&kvm_vmclock_auto_key) &&
	       READ_ONCE(vcpu->kvm->arch.vmclock.mode) == KVM_VMCLOCK_MODE_AUTO &&
	       kvm_vmclock_auto_stale(vcpu);
}
#else
static inline void kvm_vmclock_init_vm(struct kvm *kvm)
{
}

static inline void kvm_vmclock_pre_destroy_vm(struct kvm *kvm)
{
}

static inline void kvm_vmclock_destroy_vm(struct kvm *kvm)
{
}

static inline int kvm_vm_ioctl_set_vmclock(struct kvm *kvm, void __user *argp)
{
	return -ENOTTY;
}

static inline int kvm_vm_ioctl_get_vmclock(struct kvm *kvm, void __user *argp)
{
	return -ENOTTY;
}

static inline int kvm_vm_ioctl_set_vmclock_host(struct kvm *kvm,
						void __user *argp)
{
	return -ENOTTY;
}

static inline void kvm_vmclock_update(struct kvm_vcpu *vcpu)
{
}

static inline void kvm_vmclock_memslots_updated(struct kvm *kvm)
{
}

static inline void kvm_vmclock_exit(void)
{
}

static inline int kvm_vm_ioctl_vmclock_disruption(struct kvm *kvm,
						  void __user *argp)
{
	return -ENOTTY;
}

static inline u32 kvm_vmclock_caps(struct kvm *kvm)
{
	return 0;
}

static inline void kvm_vmclock_vcpu_tsc_changed(struct kvm_vcpu *vcpu)
{
}

static inline bool kvm_vmclock_entry_stale(struct kvm_vcpu *vcpu)
{
	return false;
}
#endif /* CONFIG_KVM_VMCLOCK */

#endif /* __ARCH_X86_KVM_VMCLOCK_H__ */
