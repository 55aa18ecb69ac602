// SPDX-License-Identifier: MIT
// lock_truth_cxx - a contended wait in a C++ member function, for
// tests/test_preload.c: rtm-shmdump --locks must name the site
// demangled, rtmtest::Contender::wait_here().  Three rounds: a holder keeps
// the mutex while a thread waits in wait_here().  Prints "done", then holds
// its segment until stdin closes.
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <thread>

namespace rtmtest {

class Contender {
public:
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	std::atomic<bool> waiting{ false };

	// Not inlined: the site under test is this function.
	__attribute__((noinline)) void wait_here()
	{
		waiting = true;
		pthread_mutex_lock(&mu);
		__asm__ volatile("" ::: "memory"); // no tail call
		pthread_mutex_unlock(&mu);
	}
};

} // namespace rtmtest

int main()
{
	rtmtest::Contender c;

	for (int i = 0; i < 3; i++) {
		pthread_mutex_lock(&c.mu);
		c.waiting = false;
		std::thread t([&c] { c.wait_here(); });
		while (!c.waiting)
			usleep(100);
		usleep(20000); // it is surely blocked now
		pthread_mutex_unlock(&c.mu);
		t.join();
	}
	std::puts("done");
	std::fflush(stdout);
	while (std::getchar() != EOF) {
	}
	return 0;
}
