// Compiled into the Vulkan backend library only: which driver, at which
// version, runs a device. ggml reports the device's name but not its
// driver, and ragtune refuses work that a known driver version corrupts
// (bindings.Backend.TrainingSupported).
#include <stdio.h>
#include <string.h>
#include <vulkan/vulkan.h>

// ragtune_vk_driver writes "<driverID>\t<driverName>\t<driverInfo>" for the
// first physical device named device_name (ggml's device description is
// that name) into out. It returns 0, or -1 when no such device answers.
__attribute__((visibility("default"))) int ragtune_vk_driver(const char *device_name, char *out, size_t n) {
	VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO, .apiVersion = VK_API_VERSION_1_2};
	VkInstanceCreateInfo info = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, .pApplicationInfo = &app};
	VkInstance instance;
	if (vkCreateInstance(&info, NULL, &instance) != VK_SUCCESS) {
		return -1;
	}
	VkPhysicalDevice devices[32];
	uint32_t count = 32;
	int found = -1;
	VkResult r = vkEnumeratePhysicalDevices(instance, &count, devices);
	for (uint32_t i = 0; (r == VK_SUCCESS || r == VK_INCOMPLETE) && i < count && found != 0; i++) {
		VkPhysicalDeviceProperties base;
		vkGetPhysicalDeviceProperties(devices[i], &base);
		// Driver properties are core from Vulkan 1.2, which ggml requires anyway.
		if (strcmp(base.deviceName, device_name) != 0 || base.apiVersion < VK_API_VERSION_1_2) {
			continue;
		}
		VkPhysicalDeviceDriverProperties driver = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
		VkPhysicalDeviceProperties2 props = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &driver};
		vkGetPhysicalDeviceProperties2(devices[i], &props);
		snprintf(out, n, "%d\t%s\t%s", (int)driver.driverID, driver.driverName, driver.driverInfo);
		found = 0;
	}
	vkDestroyInstance(instance, NULL);
	return found;
}
