#pragma once
// Thread-safety annotations, checked by clang's -Wthread-safety (see
// https://clang.llvm.org/docs/ThreadSafetyAnalysis.html); on other compilers
// they expand to nothing. Names follow LevelDB's port/thread_annotations.h.
//
//   Mutex mu_;
//   int count_ GUARDED_BY(mu_);             // read or written only with mu_ held
//   void Bump() EXCLUSIVE_LOCKS_REQUIRED(mu_);  // callers hold mu_
//   void Flush() LOCKS_EXCLUDED(mu_);       // callers must not hold mu_
//
// The lock types themselves (keel::Mutex, keel::MutexLock) are in
// engine/mutex.h; std::mutex carries no annotations, so guarded members use
// keel::Mutex.

#if defined(__clang__)
#define KEEL_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define KEEL_THREAD_ANNOTATION(x)
#endif

// On a member: reading or writing it requires holding `x`.
#ifndef GUARDED_BY
#define GUARDED_BY(x) KEEL_THREAD_ANNOTATION(guarded_by(x))
#endif

// On a pointer member: what it points to is guarded by `x` (the pointer
// itself is not).
#ifndef PT_GUARDED_BY
#define PT_GUARDED_BY(x) KEEL_THREAD_ANNOTATION(pt_guarded_by(x))
#endif

// On a mutex: the lock order. ACQUIRED_AFTER(a) means take `a` first.
#ifndef ACQUIRED_AFTER
#define ACQUIRED_AFTER(...) KEEL_THREAD_ANNOTATION(acquired_after(__VA_ARGS__))
#endif
#ifndef ACQUIRED_BEFORE
#define ACQUIRED_BEFORE(...) KEEL_THREAD_ANNOTATION(acquired_before(__VA_ARGS__))
#endif

// On a function: callers must hold the listed mutexes.
#ifndef EXCLUSIVE_LOCKS_REQUIRED
#define EXCLUSIVE_LOCKS_REQUIRED(...) KEEL_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#endif

// On a function: callers must not hold the listed mutexes (it takes them).
#ifndef LOCKS_EXCLUDED
#define LOCKS_EXCLUDED(...) KEEL_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#endif

// On a function: it returns a reference to the mutex `x`.
#ifndef LOCK_RETURNED
#define LOCK_RETURNED(x) KEEL_THREAD_ANNOTATION(lock_returned(x))
#endif

// On a class: it is a mutex (CAPABILITY("mutex")), or an object that holds
// one for its lifetime (SCOPED_CAPABILITY).
#ifndef CAPABILITY
#define CAPABILITY(x) KEEL_THREAD_ANNOTATION(capability(x))
#endif
#ifndef SCOPED_CAPABILITY
#define SCOPED_CAPABILITY KEEL_THREAD_ANNOTATION(scoped_lockable)
#endif

// On a function: it takes / releases the listed mutexes (or `this` when none
// are listed). TRYLOCK takes them only when it returns `success`.
#ifndef EXCLUSIVE_LOCK_FUNCTION
#define EXCLUSIVE_LOCK_FUNCTION(...) KEEL_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#endif
#ifndef EXCLUSIVE_TRYLOCK_FUNCTION
#define EXCLUSIVE_TRYLOCK_FUNCTION(...) KEEL_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
#endif
#ifndef UNLOCK_FUNCTION
#define UNLOCK_FUNCTION(...) KEEL_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#endif

// On a function: it returns only if the listed mutexes (or `this`) are held;
// the analysis assumes them held afterwards.
#ifndef ASSERT_EXCLUSIVE_LOCK
#define ASSERT_EXCLUSIVE_LOCK(...) KEEL_THREAD_ANNOTATION(assert_capability(__VA_ARGS__))
#endif

// On a function: not checked. Each use says in a comment why.
#ifndef NO_THREAD_SAFETY_ANALYSIS
#define NO_THREAD_SAFETY_ANALYSIS KEEL_THREAD_ANNOTATION(no_thread_safety_analysis)
#endif
